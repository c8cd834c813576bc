"""Any other file mutagen opens (APEv2 in WavPack/Monkey's Audio/Musepack, ...): reads the common
lower-case keys title, artist, album, genre and bpm where its tag type has them; writes nothing."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, number, texts


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

        def first(key: str) -> str | None:
            return next(iter(values(key)), None)

        return TrackTags(
            first("title"), first("artist"), first("album"), values("genre"), (), number(first("bpm"))
        )

    def write(self, audio: Any, values: TagValues) -> None:
        raise NotImplementedError("generic files are read-only")
