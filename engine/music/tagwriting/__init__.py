"""Write genre and mood into audio files following MusicBrainz Picard's conventions, on mutagen.

One module per container family behind one small interface (`FormatWriter`), as Picard's `formats/`:
`id3` (MP3), `vorbis` (FLAC, Ogg Vorbis, Opus), `mp4` (M4A/MP4). Writing never touches the original
until a fully written copy in the same folder has been re-read and verified; then it atomically
replaces the original. Existing values are kept: new genres/moods are appended, never substituted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from viml.errors import UserFacingError


class TagWriteError(UserFacingError):
    """Tags could not be written; the original file is unchanged."""


@dataclass(frozen=True)
class TagValues:
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()


class FormatWriter(Protocol):
    suffixes: tuple[str, ...]

    def read(self, path: Path) -> TagValues: ...

    def write(self, path: Path, values: TagValues) -> None: ...


def _writers() -> list[FormatWriter]:
    from viml.engine.music.tagwriting import id3, mp4, vorbis

    return [id3.Id3Writer(), vorbis.VorbisWriter(), mp4.Mp4Writer()]


def writer_for(path: str | os.PathLike) -> FormatWriter | None:
    suffix = Path(path).suffix.lower()
    return next((w for w in _writers() if suffix in w.suffixes), None)


def merged(current: TagValues, new: TagValues) -> TagValues:
    """Current values first, then new ones not already there (case-insensitive)."""

    def merge(old: tuple[str, ...], add: tuple[str, ...]) -> tuple[str, ...]:
        seen = {value.lower() for value in old}
        return old + tuple(value for value in add if value.lower() not in seen)

    return TagValues(merge(current.genres, new.genres), merge(current.moods, new.moods))


def plan(path: str | os.PathLike, new: TagValues) -> tuple[TagValues, TagValues]:
    """(current, after) tag values for `path` if `new` were written; raises TagWriteError if unsupported."""
    path = Path(path)
    writer = writer_for(path)
    if writer is None:
        raise TagWriteError(f"{path}: writing tags into {path.suffix or 'this'} files is not supported")
    try:
        current = writer.read(path)
    except Exception as error:  # mutagen raises many types for damaged files
        raise TagWriteError(f"{path}: cannot read its tags ({error})") from error
    return current, merged(current, new)


def write_tags(path: str | os.PathLike, new: TagValues) -> TagValues:
    """Add genres/moods to the file safely (temp copy, verify, atomic replace); returns the values now there."""
    import mutagen

    path = Path(path)
    current, after = plan(path, new)
    if after == current:
        return current
    writer = writer_for(path)
    assert writer is not None  # plan() checked
    before_length = _audio_length(mutagen, path)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".viml-tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        shutil.copy2(path, temporary)
        writer.write(temporary, after)
        if writer.read(temporary) != after:
            raise TagWriteError(f"{path}: tags read back differently after writing; file left unchanged")
        after_length = _audio_length(mutagen, temporary)
        if before_length is not None and (after_length is None or abs(after_length - before_length) > 1e-3):
            raise TagWriteError(f"{path}: audio looked different after writing tags; file left unchanged")
        os.replace(temporary, path)
    except TagWriteError:
        raise
    except Exception as error:
        raise TagWriteError(f"{path}: could not write tags ({error}); file left unchanged") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return after


def _audio_length(mutagen, path: Path) -> float | None:
    try:
        info = mutagen.File(path)
        return float(info.info.length) if info is not None else None
    except Exception:
        return None
