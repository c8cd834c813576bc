"""Rendered excerpts of tracks, cached on disk: what the desktop app's drags and auditions carry and
what `viml serve` answers /v1/excerpt and /v1/preview with. One cache for both.

A request names `duration` seconds of a track from `start`, a mode and a loudness target:
- "auto": the fitted edit (fitting.render_excerpt: it starts on a downbeat and ends exactly at the
  length) from the catalog's beats or measured now; when they are not known and cannot be measured
  (BeatNet not converted) the plain cut instead, and the excerpt says it `fell_back`;
- "fitted": the fitted edit, or a UserFacingError where "auto" would fall back;
- "plain": fitting.render_plain_excerpt, the cut from `start` with short fades, padded to the length;
- RAW ("raw", the service's preview): the track's own samples from `start`, at most `duration` long
  (no fade, no gain, no padding; the strategy and the loudness target do not apply).

Each is a WAV at the source's rate in `<folder>/<key>/<title> <range>.wav` with `excerpt.json` beside it.
The key holds everything the render depends on (RENDER_VERSION, the source's path, size and mtime, start,
length, mode, strategy, loudness target), so the same part asked again is a lookup, and an edited file
gets a new excerpt. The sidecar is written last and records the WAV's size: an entry without it, or
whose WAV is missing or of another size, is rendered again, never served. The folder is bounded
(`max_bytes`): the least recently used entries go first. Several processes (the app and `viml serve`)
may share the folder: the WAV and the sidecar are each moved into place whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from viml.catalog import fitting
from viml.catalog.store import Catalog
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir

log = logging.getLogger(__name__)

MODES = ("auto", "fitted", "plain")  # what a user may ask for
RAW = "raw"
MAX_CACHE_BYTES = 1 << 30  # ~190 thirty-second stereo excerpts at 44.1 kHz
# Bump when a renderer's output or the sidecar changes, so old cached excerpts are not reused.
RENDER_VERSION = 3  # 2: the mode in the key, the WAV's size in the sidecar; 3: the spans in the sidecar
SIDECAR = "excerpt.json"
FALLBACK_REASON = "no beats known for this track and BeatNet not converted (`viml convert-beatnet`)"


def check_mode(mode: str, allowed: tuple[str, ...] = MODES) -> None:
    if mode not in allowed:
        raise UserFacingError(f"unknown excerpt mode {mode!r}: choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ExcerptRequest:
    """The part of a track to render: `duration` seconds of `path` from `start`."""

    path: str
    title: str  # for the file's name; "" (or the file's name): the file's stem
    start: float
    duration: float
    strategy: str = "auto"  # fit.PREFERENCES; the fitted edit only
    target_lufs: float | None = fitting.FIT_LUFS
    mode: str = "auto"

    def __post_init__(self) -> None:
        check_mode(self.mode, (*MODES, RAW))

    def key(self) -> str | None:
        """What the render depends on, hashed; None when the source file is gone."""
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        # What a mode ignores is not in its key: a plain cut is the same whatever the strategy.
        strategy = self.strategy if self.mode in ("auto", "fitted") else None
        lufs = None if self.target_lufs is None or self.mode == RAW else round(self.target_lufs, 2)
        fields = [RENDER_VERSION, os.path.abspath(self.path), info.st_size, info.st_mtime_ns,
                  round(self.start, 4), round(self.duration, 4), self.mode, strategy, lufs]  # fmt: skip
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:20]

    @property
    def file_name(self) -> str:
        """'Night Drive 1m04.2-1m34.2.wav': the title and the range of the source it starts from."""
        # The results show the file's name for an untitled track: its stem here, not "Song_wav".
        title = fitting.file_title(None if self.title == Path(self.path).name else self.title, self.path)
        return (
            f"{title} {fitting.file_clock(self.start)}-{fitting.file_clock(self.start + self.duration)}.wav"
        )


@dataclass(frozen=True)
class Excerpt:
    path: Path  # the WAV
    fitted: bool  # the fitted edit (beats known); False: the plain cut (or the raw part)
    description: str  # how it was made, in words (the plan's description)
    start: float  # where in the source it starts (the fitted edit snaps to a downbeat)
    duration: float  # seconds, exact to the sample at the source's rate
    fell_back: bool = False  # "auto" gave the plain cut: FALLBACK_REASON
    # The source's parts it plays, in order: (source_start, source_end); a fitted edit that cut or
    # repeated bars has several. Empty: one part, from `start` for `duration`.
    spans: tuple[tuple[float, float], ...] = ()

    def source_time(self, edit_seconds: float) -> float:
        """Where in the source the excerpt is `edit_seconds` in (the now-playing marker)."""
        from viml.engine.music import fit

        return fit.source_time(self.spans or ((self.start, self.start + self.duration),), edit_seconds)


class ExcerptCache:
    """Rendered excerpts on disk, by request key; bounded to `max_bytes`, least recently used out."""

    def __init__(self, folder: Path | None = None, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.folder = Path(folder) if folder is not None else cache_dir() / "excerpts"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # renders finish on several threads; one eviction at a time

    def contains(self, path: str | os.PathLike) -> bool:
        """Whether `path` is one of this cache's files (dropping it back on the app must not add it)."""
        try:
            return Path(path).resolve().is_relative_to(self.folder.resolve())
        except OSError:
            return False

    def lookup(self, request: ExcerptRequest) -> Excerpt | None:
        """The cached excerpt (its use time refreshed), or None. A few stats: fine on the GUI thread."""
        key = request.key()
        if key is None:
            return None
        entry = self.folder / key
        try:
            done = json.loads((entry / SIDECAR).read_text(encoding="utf-8"))
            path = entry / done["file"]
            if path.stat().st_size != done["bytes"]:
                return None  # damaged since: rendered again
            found = Excerpt(path, done["fitted"], done["description"], done["start"], done["duration"],
                            done["fell_back"], tuple((float(a), float(b)) for a, b in done["spans"]))  # fmt: skip
            _touch(entry / SIDECAR)  # least recently *used* goes first
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found

    def render(self, request: ExcerptRequest, catalog: Catalog | str | os.PathLike | None = None) -> Excerpt:
        """Render `request` into the cache (any thread but the GUI's). `catalog`: an open catalog, or its
        file (a missing one: none yet), for the tracks' stored beats; without, beats are measured."""
        key = request.key()
        if key is None:
            raise UserFacingError(f"{request.path}: the file has vanished; rescan its folder")
        entry = self.folder / key
        entry.mkdir(parents=True, exist_ok=True)
        (entry / SIDECAR).unlink(missing_ok=True)  # a damaged entry is incomplete until rendered again
        output = entry / request.file_name
        with _opened(catalog) as opened:
            excerpt = _render(request, output, opened)
        sidecar = {"file": output.name, "bytes": output.stat().st_size, "fitted": excerpt.fitted,
                   "fell_back": excerpt.fell_back, "description": excerpt.description,
                   "start": excerpt.start, "duration": excerpt.duration, "spans": excerpt.spans,
                   "mode": request.mode,
                   "source": os.path.abspath(request.path)}  # fmt: skip
        # A name of this thread's own: another process may be writing the same entry.
        temporary = entry / f".{SIDECAR}.{os.getpid()}.{threading.get_ident()}.part"
        temporary.write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
        os.replace(temporary, entry / SIDECAR)  # the sidecar marks the entry complete: written last
        _touch(entry / SIDECAR)
        self.evict(keep=entry)
        return excerpt

    def evict(self, keep: Path | None = None) -> int:
        """Remove the least recently used entries until the folder holds at most `max_bytes` (never
        `keep`, the one just written); returns how many were removed."""
        with self._lock:
            entries = []
            for entry in self.folder.iterdir() if self.folder.is_dir() else ():
                try:
                    files = {f.name: f.stat() for f in entry.iterdir()}
                except OSError:
                    continue
                # When it was last used; an entry still being written (no sidecar yet) by its newest file.
                sidecar = files.get(SIDECAR)
                used = (
                    sidecar.st_mtime_ns
                    if sidecar
                    else max((f.st_mtime_ns for f in files.values()), default=0)
                )
                entries.append((used, sum(f.st_size for f in files.values()), entry))
            total = sum(size for _, size, _ in entries)
            removed = 0
            for _used, size, entry in sorted(entries, key=lambda e: e[0]):
                if total <= self.max_bytes:
                    break
                if keep is not None and entry == keep:
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                total -= size
                removed += 1
            return removed


def _render(request: ExcerptRequest, output: Path, catalog: Catalog | None) -> Excerpt:
    from viml.engine.music.rhythm.network import BeatNetMissingError

    path, start, duration, lufs = request.path, request.start, request.duration, request.target_lufs
    if request.mode == RAW:
        return _render_raw(request, output)
    fell_back = False
    if request.mode != "plain":
        try:
            plan = fitting.render_excerpt(path, start, duration, output, catalog,
                                          strategy=request.strategy, target_lufs=lufs)  # fmt: skip
            return Excerpt(output, True, plan.describe(), plan.start, plan.duration, spans=plan.parts)
        except BeatNetMissingError as error:
            if request.mode == "fitted":
                raise UserFacingError(
                    f"{path}: its beats are not in the catalog and cannot be measured: {error}"
                ) from error
            log.info("%s: no beats known, a plain excerpt (%s)", path, error)
            fell_back = True
    plan = fitting.render_plain_excerpt(path, start, duration, output, lufs)
    return Excerpt(output, False, plan.describe(), plan.start, plan.duration, fell_back, plan.parts)


def _render_raw(request: ExcerptRequest, output: Path) -> Excerpt:
    from viml.engine.music import fit

    audio, rate = fit.read_source_audio(request.path)
    first = round(request.start * rate)
    if not 0 <= first < len(audio):
        raise UserFacingError(
            f"{request.path}: starts at {request.start:g} s but the track is {len(audio) / rate:.1f} s long"
        )
    part = audio[first : first + round(request.duration * rate)]
    fit.write_audio(output, part, rate)
    length = len(part) / rate
    return Excerpt(output, False, f"the track as it is from {fit.clock(request.start)}, {length:.1f} s",
                   request.start, length)  # fmt: skip


def _touch(path: Path) -> None:
    # The clock's own nanoseconds: the file system's write times are coarse (a few ms), so two uses in
    # quick succession could tie and leave the order of eviction to chance.
    now = time.time_ns()
    os.utime(path, ns=(now, now))


@contextlib.contextmanager
def _opened(catalog: Catalog | str | os.PathLike | None) -> Iterator[Catalog | None]:
    """The catalog for its stored beats: as given, or opened from its file (None when there is none)."""
    if isinstance(catalog, Catalog) or catalog is None:
        yield catalog
    elif not Path(catalog).exists():
        yield None
    else:
        with Catalog(Path(catalog)) as opened:
            yield opened
