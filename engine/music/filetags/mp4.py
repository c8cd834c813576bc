"""MP4/M4A atoms, as Picard: genre ©gen, mood in the freeform atom ----:com.apple.iTunes:MOOD; title ©nam,
artist ©ART, album ©alb and BPM tmpo read."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, texts

GENRE_ATOM = "\xa9gen"
MOOD_ATOM = "----:com.apple.iTunes:MOOD"


class Mp4Format:
    writable = True

    def handles(self, audio: Any) -> bool:
        from mutagen.mp4 import MP4

        return isinstance(audio, MP4)

    def read(self, audio: Any) -> TrackTags:
        tags = audio.tags
        if tags is None:
            return TrackTags()

        def first(key: str) -> str | None:
            return next(iter(texts(tags.get(key, []))), None)

        moods = texts(bytes(value).decode("utf-8", "replace") for value in tags.get(MOOD_ATOM, []))
        bpm = next(iter(tags.get("tmpo", [])), None)
        return TrackTags(
            first("\xa9nam"), first("\xa9ART"), first("\xa9alb"), texts(tags.get(GENRE_ATOM, [])), moods,
            float(bpm) if bpm else None,
        )  # fmt: skip

    def write(self, audio: Any, values: TagValues) -> None:
        from mutagen.mp4 import MP4FreeForm

        if audio.tags is None:
            audio.add_tags()
        for key, items in (
            (GENRE_ATOM, list(values.genres)),
            (MOOD_ATOM, [MP4FreeForm(mood.encode("utf-8")) for mood in values.moods]),
        ):
            if items:
                audio.tags[key] = items
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
