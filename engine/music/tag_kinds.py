"""Which musicnn tags are genres and which are moods, for writing them into files (Picard's GENRE / MOOD).

Instrument, voice and era tags (piano, female vocal, 80s, ...) describe the music but are neither a
genre nor a mood, so they are never written into files; they still go to text synthesis and search.
Names are written lower-case, as MusicBrainz genres are.
"""

from __future__ import annotations

GENRES = frozenset(
    {
        # MTT
        "classical", "techno", "electronic", "rock", "indian", "opera", "pop", "new age", "dance",
        "country", "metal", "ambient", "choral",
        # MSD
        "alternative", "indie", "jazz", "chillout", "classic rock", "soul", "indie rock", "electronica",
        "folk", "punk", "blues", "hard rock", "experimental", "hip-hop", "easy listening", "funk",
        "electro", "heavy metal", "progressive rock", "rnb", "indie pop", "house", "alternative rock",
    }
)  # fmt: skip
MOODS = frozenset(
    {
        # MTT
        "slow", "fast", "loud", "quiet", "soft", "weird",
        # MSD
        "beautiful", "mellow", "chill", "sad", "happy", "sexy", "catchy", "party",
    }
)  # fmt: skip


def genres_and_moods(tags: list[tuple[str, float]]) -> tuple[list[str], list[str]]:
    """Split (tag, probability) pairs, highest first, into de-duplicated genre and mood names."""
    genres: list[str] = []
    moods: list[str] = []
    for tag, _ in sorted(tags, key=lambda item: -item[1]):
        name = tag.lower()
        if name in GENRES and name not in genres:
            genres.append(name)
        elif name in MOODS and name not in moods:
            moods.append(name)
    return genres, moods
