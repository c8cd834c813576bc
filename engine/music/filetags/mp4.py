"""MP4/M4A atoms, as Picard: genre ©gen (mutagen reads the numeric gnre into it), mood in the freeform atom
----:com.apple.iTunes:MOOD. Read as well: title ©nam, artist ©ART, album ©alb, album artist aART, comment
©cmt / desc / ldes, grouping ©grp, keywords keyw, BPM tmpo, key ----:com.apple.iTunes:initialkey (or KEY),
language ----:com.apple.iTunes:LANGUAGE, composer ©wrt. Freeform values are decoded as UTF-8 with
replacement characters; a text atom that is not UTF-8 (which mutagen sets aside) is read the same way."""

from __future__ import annotations

from typing import Any

from viml.engine.music.filetags import TagValues, TrackTags

GENRE_ATOM = "\xa9gen"
MOOD_ATOM = "----:com.apple.iTunes:MOOD"
ITUNES = "----:com.apple.iTunes:"
ATOMS: dict[str, tuple[str, ...]] = {
    "title": ("\xa9nam",),
    "artist": ("\xa9ART",),
    "album": ("\xa9alb",),
    "album_artist": ("aART",),
    "genre": (GENRE_ATOM,),
    "mood": (MOOD_ATOM,),
    "comment": ("\xa9cmt", "desc", "ldes"),
    "grouping": ("\xa9grp",),
    "keywords": ("keyw", ITUNES + "KEYWORDS"),
    "bpm": ("tmpo",),
    "key": (ITUNES + "initialkey", ITUNES + "KEY"),
    "language": (ITUNES + "LANGUAGE",),
    "composer": ("\xa9wrt",),
}


def _set_aside(tags: Any, key: str) -> list[str]:
    """The texts of an atom mutagen could not parse (its raw `data` atoms), decoded with replacement."""
    out = []
    for data in getattr(tags, "_failed_atoms", {}).get(key, []):
        position = 0
        while position + 16 <= len(data):
            length = int.from_bytes(data[position : position + 4], "big")
            if length < 16 or data[position + 4 : position + 8] != b"data":
                break
            if int.from_bytes(data[position + 9 : position + 12], "big") in (0, 1):  # implicit or UTF-8
                out.append(data[position + 16 : position + length].decode("utf-8", "replace"))
            position += length
    return out


class Mp4Format:
    writable = True

    def handles(self, audio: Any) -> bool:
        from mutagen.mp4 import MP4

        return isinstance(audio, MP4)

    def read(self, audio: Any) -> TrackTags:
        tags = audio.tags
        if tags is None:
            return TrackTags()
        return TrackTags.from_words(
            {
                field: [value for key in keys for value in [*tags.get(key, []), *_set_aside(tags, key)]]
                for field, keys in ATOMS.items()
            }
        )  # freeform values are bytes (MP4FreeForm): `texts` decodes them

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
