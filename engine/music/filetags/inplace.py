"""Update a file in place, keeping its identity, with a fsynced backup that makes kill -9 harmless.

The real file (symlinks followed) is changed where it is, so its inode, hard links, owner, group and
mode stay; its modification time advances, as for any edit of its content. Before the change a full
copy is written to `.NAME.XXXX.viml-tmp`, fsynced, and renamed to `.NAME.viml-backup` (directory
fsynced too). A backup therefore always holds the complete original bytes: after the change is fsynced
and verified it is removed; if the change or the verification fails, its bytes are copied back into the
same inode (never renamed over it), with the original times. A backup found later means a write was
killed at an unknown point: `recover_file` puts it back the same way. A `.viml-tmp` file is an
unfinished backup; the original was never touched while it existed, so it is simply removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from viml.engine.music.filetags import TagWriteError

BACKUP_SUFFIX = ".viml-backup"
TEMP_SUFFIX = ".viml-tmp"
_CHUNK = 1 << 20


def _reached(point: str) -> None:
    """Progress hook (a no-op): the kill -9 test replaces it to kill the process exactly here."""


def real_file(path: Path) -> Path:
    """The regular file behind `path`, symlinks followed."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # missing, or a symlink loop
        raise TagWriteError(f"{path}: cannot follow it to a file ({error})") from error
    if not real.is_file():
        raise TagWriteError(f"{path}: not a regular file")
    return real


def backup_of(real: Path) -> Path:
    return real.with_name(f".{real.name}{BACKUP_SUFFIX}")


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _copy_into(source: BinaryIO, target: BinaryIO, point: str) -> None:
    """All of source over target from its start, truncated and fsynced; `point` after the first chunk."""
    first = True
    while chunk := source.read(_CHUNK):
        target.write(chunk)
        if first:
            target.flush()
            _reached(point)
            first = False
    target.truncate()
    target.flush()
    os.fsync(target.fileno())


def _make_backup(real: Path) -> Path:
    original = real.stat()
    handle, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=TEMP_SUFFIX, dir=real.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as target, open(real, "rb") as source:
            _copy_into(source, target, "backup-copying")
        if temporary.stat().st_size != original.st_size:
            raise OSError(f"the backup has {temporary.stat().st_size} of {original.st_size} bytes")
        os.utime(temporary, ns=(original.st_atime_ns, original.st_mtime_ns))
        _reached("backup-written")
        os.replace(temporary, backup_of(real))
        _fsync_folder(real.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _reached("backup-ready")
    return backup_of(real)


def _restore(real: Path, backup: Path) -> None:
    """Copy the backup's bytes and times back into the same inode, then drop the backup."""
    try:
        with open(backup, "rb") as source, open(real, "r+b") as target:
            _copy_into(source, target, "restoring")
        saved = backup.stat()
        os.utime(real, ns=(saved.st_atime_ns, saved.st_mtime_ns))
        _reached("restored")
        backup.unlink()
        _fsync_folder(real.parent)
    except OSError as error:
        raise TagWriteError(
            f"{real}: could not put its original bytes back ({error}); they are kept in {backup}"
        ) from error


def update(real: Path, change: Callable[[], None], verify: Callable[[Path], str | None]) -> None:
    """Run `change` (writes `real` in place), fsync, `verify` (a problem or None); undo on any failure."""
    if not os.access(real, os.W_OK):
        raise TagWriteError(f"{real}: the file is not writable")
    try:
        backup = _make_backup(real)
    except OSError as error:
        raise TagWriteError(
            f"{real}: cannot make a backup copy next to it ({error}); file unchanged"
        ) from error
    try:
        change()
        _reached("changed")
        with open(real, "rb") as handle:
            os.fsync(handle.fileno())
        _reached("synced")
        problem = verify(real)
        if problem:
            raise TagWriteError(f"{real}: {problem}")
    except BaseException as error:  # KeyboardInterrupt too: the file must not stay half written
        _restore(real, backup)
        if isinstance(error, TagWriteError):
            raise TagWriteError(f"{error}; its original bytes were put back") from error
        if isinstance(error, Exception):
            message = f"{real}: could not write tags ({error}); its original bytes were put back"
            raise TagWriteError(message) from error
        raise
    _reached("verified")
    backup.unlink()
    _fsync_folder(real.parent)


def recover_file(real: Path) -> str | None:
    """Undo an interrupted write of `real` if its backup is there; a line for the user, or None."""
    backup = backup_of(real)
    if not backup.exists():
        return None
    _restore(real, backup)
    return f"{real}: undid an interrupted tag write (original bytes put back from {backup.name})"


def recover_folders(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Restore every backup and remove every temporary copy in the folders holding these files."""
    folders = set()
    for path in paths:
        with contextlib.suppress(OSError, RuntimeError):
            folders.add(Path(path).resolve(strict=True).parent)
    lines = []
    for folder in sorted(folders):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            entry = folder / name
            if not name.startswith(".") or entry.is_symlink() or not entry.is_file():
                continue
            if name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                lines.append(f"{entry}: removed an unfinished copy left by an interrupted tag write")
            elif name.endswith(BACKUP_SUFFIX):
                real = folder / name[1 : -len(BACKUP_SUFFIX)]
                if real.is_symlink() or not real.is_file():
                    lines.append(
                        f"{entry}: kept this backup of an interrupted tag write: {real.name} is gone"
                    )
                    continue
                try:
                    lines.append(recover_file(real) or "")
                except TagWriteError as error:
                    lines.append(str(error))
    return [line for line in lines if line]
