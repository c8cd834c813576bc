"""FLAC, Ogg Vorbis and Opus (Vorbis comments): one GENRE and one MOOD comment per value (Picard)."""

from __future__ import annotations

from pathlib import Path

from viml.engine.music.tagwriting import TagValues


class VorbisWriter:
    suffixes = (".flac", ".ogg", ".oga", ".opus")

    def _open(self, path: Path):
        import mutagen

        audio = mutagen.File(path)
        if audio is None:
            raise ValueError("not a FLAC/Ogg file mutagen recognises")
        if audio.tags is None:
            audio.add_tags()
        return audio

    def read(self, path: Path) -> TagValues:
        tags = self._open(path).tags
        return TagValues(tuple(tags.get("GENRE", [])), tuple(tags.get("MOOD", [])))

    def write(self, path: Path, values: TagValues) -> None:
        audio = self._open(path)
        for key, items in (("GENRE", values.genres), ("MOOD", values.moods)):
            if items:
                audio.tags[key] = list(items)
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
