"""ID3v2 tags (MP3, and the ID3 chunk of WAV and AIFF), as Picard: genre in TCON; mood in TMOO for
ID3v2.4 and TXXX:MOOD for ID3v2.3. Read as well: title TIT2, artist TPE1, album TALB, album artist TPE2,
comment COMM (every language and description but iTunes' own iTun* data) and TXXX:DESCRIPTION/COMMENT,
grouping TIT1/GRP1/TXXX:GROUPING, keywords TXXX:KEYWORDS, BPM TBPM, key TKEY/TXXX:INITIALKEY/TXXX:KEY,
language TLAN, composer TCOM (TXXX descriptions match in any case). A WAV file's RIFF INFO chunk adds its
words after the ID3 ones (`riff`).

Frames are read as mutagen parses them: one value per null-separated string, never split on "/" (an
ID3v2.3 genre "Drum/Bass" is one genre). Latin-1 frames decode whatever their bytes; a frame whose
declared UTF-8/UTF-16 text does not decode is dropped by mutagen, the rest of the tag is still read.
A file's ID3 version is kept; several values are written null-separated in both versions (v2.3 with
mutagen's v23_sep=None, what mutagen and Picard read back as separate values), so a value holding "/"
survives a rewrite unchanged.
"""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, merge_words, riff

# field -> frames: a frame id, or "TXXX:DESCRIPTION" (any case); COMM and TCON are read on their own.
FRAMES: dict[str, tuple[str, ...]] = {
    "title": ("TIT2",),
    "artist": ("TPE1",),
    "album": ("TALB",),
    "album_artist": ("TPE2",),
    "mood": ("TMOO", "TXXX:MOOD"),
    "comment": ("TXXX:DESCRIPTION", "TXXX:COMMENT"),
    "grouping": ("TIT1", "GRP1", "TXXX:GROUPING"),
    "keywords": ("TXXX:KEYWORDS",),
    "bpm": ("TBPM",),
    "key": ("TKEY", "TXXX:INITIALKEY", "TXXX:KEY"),
    "language": ("TLAN",),
    "composer": ("TCOM",),
}


def _words(tags: Any) -> dict[str, list[str]]:
    user: dict[str, list[str]] = {}  # TXXX by description, upper case
    for frame in tags.getall("TXXX"):
        user.setdefault(f"TXXX:{frame.desc.upper()}", []).extend(frame.text)

    def texts(key: str) -> list[str]:
        if key.startswith("TXXX:"):
            return user.get(key, [])
        return [text for frame in tags.getall(key) for text in frame.text]

    words = {field: [text for key in keys for text in texts(key)] for field, keys in FRAMES.items()}
    words["genre"] = list(tags["TCON"].genres) if "TCON" in tags else []  # "(17)" and "17" become "Rock"
    comments = [
        text for frame in tags.getall("COMM") if not frame.desc.startswith("iTun") for text in frame.text
    ]
    words["comment"] = comments + words["comment"]
    return words


class Id3Format:
    writable = True

    def handles(self, audio: Any) -> bool:
        from mutagen.aiff import AIFF
        from mutagen.id3 import ID3, ID3FileType
        from mutagen.wave import WAVE

        return isinstance(audio, (ID3FileType, WAVE, AIFF)) or isinstance(audio.tags, ID3)

    def read(self, audio: Any) -> TrackTags:
        from mutagen.wave import WAVE

        words = _words(audio.tags) if audio.tags is not None else {}
        if isinstance(audio, WAVE) and getattr(audio, "filename", None):
            words = merge_words(words, riff.read_info(audio.filename))
        return TrackTags.from_words(words)

    def write(self, audio: Any, values: TagValues) -> None:
        from mutagen.id3 import TCON, TMOO, TXXX

        if audio.tags is None:
            audio.add_tags()
        tags = audio.tags
        version = 3 if tags.version[:2] == (2, 3) else 4
        for key in ("TCON", "TMOO", "TXXX:MOOD"):
            tags.delall(key)
        if values.genres:
            tags.add(TCON(encoding=3, text=list(values.genres)))
        if values.moods:
            mood = TMOO(encoding=3, text=list(values.moods))
            tags.add(mood if version == 4 else TXXX(encoding=3, desc="MOOD", text=list(values.moods)))
        if version == 3:
            tags.update_to_v23()  # mutagen reads v2.3 as v2.4 (TYER -> TDRC ...); back before saving
        audio.save(v2_version=version, v23_sep=None)
