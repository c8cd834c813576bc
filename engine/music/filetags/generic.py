"""Any other file mutagen opens (APEv2 in WavPack/Monkey's Audio/Musepack, ...): reads the common keys
(title, artist, album, album artist, genre, mood, comment, description, grouping, keywords, bpm, key,
language, composer; APEv2 keys match in any case) where its tag type has them; writes nothing."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, texts

KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "artist": ("artist",),
    "album": ("album",),
    "album_artist": ("album artist", "albumartist"),
    "genre": ("genre",),
    "mood": ("mood",),
    "comment": ("comment", "description"),
    "grouping": ("grouping",),
    "keywords": ("keywords",),
    "bpm": ("bpm",),
    "key": ("key", "initialkey"),
    "language": ("language",),
    "composer": ("composer",),
}


class GenericFormat:
    writable = False

    def handles(self, audio: Any) -> bool:
        return True

    def read(self, audio: Any) -> TrackTags:
        tags = audio.tags
        if tags is None:
            return TrackTags()

        def values(key: str) -> tuple[str, ...]:
            try:
                found = tags.get(key)
            except (KeyError, ValueError, TypeError):
                return ()
            if found is None:
                return ()
            if isinstance(found, str) or not hasattr(found, "__len__"):
                return texts([found])
            return texts(found[index] for index in range(len(found)))  # lists and APEv2 values

        return TrackTags.from_words(
            {field: [value for key in keys for value in values(key)] for field, keys in KEYS.items()}
        )

    def write(self, audio: Any, values: TagValues) -> None:
        raise NotImplementedError("generic files are read-only")
