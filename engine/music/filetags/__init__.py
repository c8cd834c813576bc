"""Read and write audio file tags, one class per container format, as MusicBrainz Picard's `formats/`.

Each format reads every text field a search can use (`TrackTags`: title, artist, album, album artist,
every genre, mood, comment/description, grouping, keywords, BPM, key, language, composer; `TrackTags.words`
gives them as field -> values) and writes genres and moods with Picard's keys: `id3` (MP3, AIFF, and WAV,
whose RIFF INFO chunk `riff` adds), `vorbis` (FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex), `mp4` (M4A/MP4);
`generic` reads the common keys of any other file mutagen opens and writes nothing. Existing values are
kept: new genres/moods are appended, never substituted. Reading more fields? Bump
`viml.catalog.words.WORDS_VERSION`, so the next scan re-reads the tags of catalogued files.

Writing keeps the file's identity (`inplace`): symlinks are followed, the real file is updated in place
(same inode, hard links, owner, group and mode) after a fsynced backup next to it, re-read and verified,
and put back from the backup on any failure. A backup left by a kill is restored by `recover`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from viml.core.errors import UserFacingError

if TYPE_CHECKING:
    from mutagen import FileType


class TagWriteError(UserFacingError):
    """Tags could not be written; the file holds its original bytes."""


@dataclass(frozen=True)
class TagValues:
    """What ViML writes: genres and moods."""

    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()


# The text fields a file can hold, as `TrackTags.words` names them, each with its TrackTags attribute.
WORD_FIELDS: dict[str, str] = {
    "title": "title",
    "artist": "artist",
    "album": "album",
    "album_artist": "album_artists",
    "genre": "genres",
    "mood": "moods",
    "comment": "comments",  # comments and descriptions
    "grouping": "groupings",
    "keywords": "keywords",
    "bpm": "bpm",
    "key": "keys",
    "language": "languages",
    "composer": "composers",
}


@dataclass(frozen=True)
class TrackTags:
    """What a file's tags say. Title, artist and album are the first value of their field (the catalog's
    columns); every other field keeps all its values, in the file's order, without case-insensitive
    repeats, never split on "/" or any other character."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    bpm: float | None = None
    album_artists: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()
    groupings: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # musical key, e.g. "Am", "8A"
    languages: tuple[str, ...] = ()
    composers: tuple[str, ...] = ()

    @property
    def values(self) -> TagValues:
        return TagValues(self.genres, self.moods)

    @property
    def words(self) -> dict[str, tuple[str, ...]]:
        """Every non-empty field as field name (WORD_FIELDS) -> its values as text."""
        out = {}
        for name, attribute in WORD_FIELDS.items():
            value = getattr(self, attribute)
            if isinstance(value, float):
                value = (f"{value:g}",)
            elif isinstance(value, str):
                value = (value,)
            if value:
                out[name] = value
        return out

    @classmethod
    def from_words(cls, words: Mapping[str, Iterable[Any]]) -> TrackTags:
        """TrackTags from field name -> raw values (any missing field is empty)."""
        found = {name: unique(texts(words.get(name, ()))) for name in WORD_FIELDS}
        fields: dict[str, Any] = {}
        for name, attribute in WORD_FIELDS.items():
            if name in ("title", "artist", "album", "bpm"):
                first = next(iter(found[name]), None)
                fields[attribute] = number(first) if name == "bpm" else first
            else:
                fields[attribute] = found[name]
        return cls(**fields)


@dataclass(frozen=True)
class FileInfo:
    format: str  # mutagen's class name, lower case: mp3, flac, mp4, wave, aiff, oggvorbis, ...
    duration: float | None
    tags: TrackTags = field(default_factory=TrackTags)
    writable: bool = False


class TagFormat(Protocol):
    """One container format: recognises mutagen's file object, reads its tags, writes genres/moods."""

    writable: bool

    def handles(self, audio: FileType) -> bool: ...

    def read(self, audio: FileType) -> TrackTags: ...

    def write(self, audio: FileType, values: TagValues) -> None:
        """Set genres/moods (replacing the lists) and save in place."""
        ...


def _formats() -> list[TagFormat]:
    from viml.engine.music.filetags import generic, id3, mp4, vorbis

    return [id3.Id3Format(), vorbis.VorbisFormat(), mp4.Mp4Format(), generic.GenericFormat()]


def texts(values: Iterable[Any]) -> tuple[str, ...]:
    """Non-empty stripped strings, in order; values are never split on "/" or any other character; bytes
    are decoded as UTF-8, with replacement characters where they are not."""
    return tuple(
        text
        for text in (
            (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()
            for value in values
        )
        if text
    )


def unique(values: Iterable[str]) -> tuple[str, ...]:
    """The values in order without case-insensitive repeats."""
    seen: set[str] = set()
    out = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return tuple(out)


def merge_words(*sources: Mapping[str, Iterable[Any]]) -> dict[str, list[Any]]:
    """Field -> the values of every source, in order (TrackTags.from_words drops the repeats)."""
    out: dict[str, list[Any]] = {}
    for source in sources:
        for name, values in source.items():
            out.setdefault(name, []).extend(values)
    return out


def number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _open(path: Path) -> tuple[FileType, TagFormat] | None:
    """mutagen's file object and its format; None if mutagen does not recognise the file; raises if damaged."""
    import mutagen

    audio = mutagen.File(path)
    if audio is None:
        return None
    return audio, next(f for f in _formats() if f.handles(audio))


def _info(audio: FileType, tag_format: TagFormat, tags: TrackTags) -> FileInfo:
    length = getattr(getattr(audio, "info", None), "length", None)
    name = type(audio).__name__.removeprefix("Easy").lower()
    return FileInfo(name, float(length) if length else None, tags, tag_format.writable)


def read_file(path: str | os.PathLike) -> FileInfo | None:
    """Format, duration and tags; None if mutagen cannot open the file, empty tags if they are damaged.

    Never raises: files are hostile (mutagen raises many types) and tags are optional.
    """
    try:
        opened = _open(Path(path))
    except Exception:
        return None
    if opened is None:
        return None
    audio, tag_format = opened
    try:
        tags = tag_format.read(audio)
    except Exception:
        tags = TrackTags()
    return _info(audio, tag_format, tags)


def _read_strict(path: Path) -> tuple[FileType, TagFormat, FileInfo]:
    try:
        opened = _open(path)
    except Exception as error:  # mutagen raises many types for damaged files
        raise TagWriteError(f"{path}: cannot read its tags ({error})") from error
    if opened is None:
        raise TagWriteError(f"{path}: writing tags into {path.suffix or 'this'} files is not supported")
    audio, tag_format = opened
    try:
        tags = tag_format.read(audio)
    except Exception as error:
        raise TagWriteError(f"{path}: cannot read its tags ({error})") from error
    info = _info(audio, tag_format, tags)
    if not tag_format.writable:
        raise TagWriteError(f"{path}: writing tags into {info.format} files is not supported")
    return audio, tag_format, info


def merged(current: TagValues, new: TagValues) -> TagValues:
    """Current values first, then new ones not already there (case-insensitive)."""

    def merge(old: tuple[str, ...], add: tuple[str, ...]) -> tuple[str, ...]:
        seen = {value.lower() for value in old}
        return old + tuple(value for value in add if value.lower() not in seen)

    return TagValues(merge(current.genres, new.genres), merge(current.moods, new.moods))


def plan(path: str | os.PathLike, new: TagValues) -> tuple[TagValues, TagValues]:
    """(current, after) tag values for `path` if `new` were written; raises TagWriteError if unsupported."""
    current = _read_strict(Path(path))[2].tags.values
    return current, merged(current, new)


def write_tags(path: str | os.PathLike, new: TagValues) -> TagValues:
    """Add genres/moods to the real file behind `path`, in place and verified; returns the values now there.

    An interrupted earlier write of the same file is undone first. On any failure the file's original
    bytes are put back and TagWriteError is raised.
    """
    from viml.engine.music.filetags import inplace

    real = inplace.real_file(Path(path))
    inplace.recover_file(real)
    audio, tag_format, before = _read_strict(real)
    after = merged(before.tags.values, new)
    if after == before.tags.values:
        return after
    expected = replace(before.tags, genres=after.genres, moods=after.moods)

    def verify(written: Path) -> str | None:
        info = read_file(written)
        if info is None or info.tags != expected:
            return "tags read back differently after writing"
        if before.duration is not None and (
            info.duration is None or abs(info.duration - before.duration) > 1e-3
        ):
            return "audio looked different after writing tags"
        return None

    inplace.update(real, lambda: tag_format.write(audio, after), verify)
    return after


def recover(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Undo interrupted tag writes and remove stale temporary copies in the folders of these files.

    Returns one line per thing done (or left alone, with the reason), for the user.
    """
    from viml.engine.music.filetags import inplace

    return inplace.recover_folders(paths)
