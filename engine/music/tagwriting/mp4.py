"""M4A/MP4: genre in the ©gen atom, mood in the freeform atom ----:com.apple.iTunes:MOOD (Picard)."""

from __future__ import annotations

from pathlib import Path

from viml.engine.music.tagwriting import TagValues

GENRE_ATOM = "\xa9gen"
MOOD_ATOM = "----:com.apple.iTunes:MOOD"


class Mp4Writer:
    suffixes = (".m4a", ".mp4", ".m4b")

    def _open(self, path: Path):
        from mutagen.mp4 import MP4

        audio = MP4(path)
        if audio.tags is None:
            audio.add_tags()
        return audio

    def read(self, path: Path) -> TagValues:
        tags = self._open(path).tags
        genres = tuple(tags.get(GENRE_ATOM, []))
        moods = tuple(bytes(value).decode("utf-8") for value in tags.get(MOOD_ATOM, []))
        return TagValues(genres, moods)

    def write(self, path: Path, values: TagValues) -> None:
        from mutagen.mp4 import MP4FreeForm

        audio = self._open(path)
        for key, items in (
            (GENRE_ATOM, list(values.genres)),
            (MOOD_ATOM, [MP4FreeForm(m.encode()) for m in values.moods]),
        ):
            if items:
                audio.tags[key] = items
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
