"""Vorbis comments (FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex), as Picard: one GENRE and one MOOD comment
per value. Read as well (keys in any case): TITLE, ARTIST, ALBUM, ALBUMARTIST / ALBUM ARTIST, COMMENT,
DESCRIPTION, GROUPING, KEYWORDS, BPM, KEY / INITIALKEY, LANGUAGE, COMPOSER. mutagen decodes comments that
are not UTF-8 with replacement characters."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags

KEYS: dict[str, tuple[str, ...]] = {
    "title": ("TITLE",),
    "artist": ("ARTIST",),
    "album": ("ALBUM",),
    "album_artist": ("ALBUMARTIST", "ALBUM ARTIST"),
    "genre": ("GENRE",),
    "mood": ("MOOD",),
    "comment": ("COMMENT", "DESCRIPTION"),
    "grouping": ("GROUPING",),
    "keywords": ("KEYWORDS",),
    "bpm": ("BPM",),
    "key": ("KEY", "INITIALKEY"),
    "language": ("LANGUAGE",),
    "composer": ("COMPOSER",),
}


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
        return TrackTags.from_words(
            {field: [value for key in keys for value in tags.get(key, [])] for field, keys in KEYS.items()}
        )  # keys are case-insensitive

    def write(self, audio: Any, values: TagValues) -> None:
        if audio.tags is None:
            audio.add_tags()
        for key, items in (("GENRE", values.genres), ("MOOD", values.moods)):
            if items:
                audio.tags[key] = list(items)
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
