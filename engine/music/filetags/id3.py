"""ID3v2 tags (MP3, and the ID3 chunk of WAV and AIFF), as Picard: genre in TCON; mood in TMOO for
ID3v2.4 and TXXX:MOOD for ID3v2.3; title TIT2, artist TPE1, album TALB, BPM TBPM.

Frames are read as mutagen parses them: one value per null-separated string, never split on "/" (an
ID3v2.3 genre "Drum/Bass" is one genre). A file's ID3 version is kept; several values are written
null-separated in both versions (v2.3 with mutagen's v23_sep=None, what mutagen and Picard read back as
separate values), so a value holding "/" survives a rewrite unchanged.
"""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, number, texts


def _frame_texts(tags: Any, key: str) -> tuple[str, ...]:
    frame = tags.get(key)
    return texts(frame.text) if frame is not None else ()


class Id3Format:
    writable = True

    def handles(self, audio: Any) -> bool:
        from mutagen.aiff import AIFF
        from mutagen.id3 import ID3, ID3FileType
        from mutagen.wave import WAVE

        return isinstance(audio, (ID3FileType, WAVE, AIFF)) or isinstance(audio.tags, ID3)

    def read(self, audio: Any) -> TrackTags:
        tags = audio.tags
        if tags is None:
            return TrackTags()

        def first(key: str) -> str | None:
            return next(iter(_frame_texts(tags, key)), None)

        genres = texts(tags["TCON"].genres) if "TCON" in tags else ()  # "(17)" and "17" become "Rock"
        moods = _frame_texts(tags, "TMOO") + _frame_texts(tags, "TXXX:MOOD")
        return TrackTags(first("TIT2"), first("TPE1"), first("TALB"), genres, moods, number(first("TBPM")))

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
