"""Vorbis comments (FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex), as Picard: one GENRE and one MOOD comment
per value; TITLE, ARTIST, ALBUM and BPM read."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags, number, texts


class VorbisFormat:
    writable = True

    def handles(self, audio: Any) -> bool:
        from mutagen.flac import FLAC
        from mutagen.oggflac import OggFLAC
        from mutagen.oggopus import OggOpus
        from mutagen.oggspeex import OggSpeex
        from mutagen.oggvorbis import OggVorbis

        return isinstance(audio, (FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex))

    def read(self, audio: Any) -> TrackTags:
        tags = audio.tags
        if tags is None:
            return TrackTags()

        def values(key: str) -> tuple[str, ...]:
            return texts(tags.get(key, []))  # keys are case-insensitive

        def first(key: str) -> str | None:
            return next(iter(values(key)), None)

        return TrackTags(
            first("TITLE"),
            first("ARTIST"),
            first("ALBUM"),
            values("GENRE"),
            values("MOOD"),
            number(first("BPM")),
        )

    def write(self, audio: Any, values: TagValues) -> None:
        if audio.tags is None:
            audio.add_tags()
        for key, items in (("GENRE", values.genres), ("MOOD", values.moods)):
            if items:
                audio.tags[key] = list(items)
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
