"""MP3 (ID3v2): genre in TCON; mood in TMOO for ID3v2.4 and in TXXX:MOOD for ID3v2.3 (Picard's mapping).

A file's existing ID3 version is kept: v2.3 files stay v2.3 (multiple values joined with "/").
"""

from __future__ import annotations

from pathlib import Path

from viml.engine.music.tagwriting import TagValues


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in str(value).split("/") if part.strip())


class Id3Writer:
    suffixes = (".mp3",)

    def _load(self, path: Path):
        from mutagen.id3 import ID3, ID3NoHeaderError

        try:
            return ID3(path)
        except ID3NoHeaderError:
            return ID3()

    def read(self, path: Path) -> TagValues:
        tags = self._load(path)
        genres = _split(tags["TCON"].genres) if "TCON" in tags else ()
        moods = [*tags["TMOO"].text] if "TMOO" in tags else []
        moods += [*tags["TXXX:MOOD"].text] if "TXXX:MOOD" in tags else []
        return TagValues(genres, _split(moods))

    def write(self, path: Path, values: TagValues) -> None:
        from mutagen.id3 import TCON, TMOO, TXXX

        tags = self._load(path)
        version = 3 if tags.version[:2] == (2, 3) else 4
        tags.delall("TCON")
        tags.delall("TMOO")
        tags.delall("TXXX:MOOD")
        if values.genres:
            tags.add(TCON(encoding=3, text=list(values.genres)))
        if values.moods:
            mood = TMOO if version == 4 else (lambda **kw: TXXX(desc="MOOD", **kw))
            tags.add(mood(encoding=3, text=list(values.moods)))
        tags.save(path, v2_version=version, v23_sep="/")
