"""Rendered excerpts of suggestions: what a drag carries into an editor and what an audition plays.

An excerpt is the fitted edit of the suggestion for the clip's length (catalog/fitting.py: it starts on
a downbeat and ends exactly at the length, loudness-matched to FIT_LUFS), or, when the track's beats are
not in the catalog and cannot be measured (BeatNet not converted), the plain cut of the best part with
short fades. Either is a WAV at the source's rate in `cache_dir()/excerpts/<key>/<title> <range>.wav`:
the key holds everything the render depends on (the source's path, size and mtime, start, length,
strategy, loudness target), so a second drag or audition of the same part is a lookup, not a render.
The folder is bounded (MAX_CACHE_BYTES): the least recently used excerpts are removed first.

Renders run on the thread pool, never on the GUI thread. `ExcerptService.prepare` answers at once from
the cache, or starts the render (once per key) and emits `ready` when it is written. Prepares for
selected or hovered rows are debounced and run one at a time, newest first; a drag or an audition asks
`immediately`.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from viml.catalog import fitting
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir
from viml.desktop import workers

log = logging.getLogger(__name__)

MAX_CACHE_BYTES = 1 << 30  # ~190 thirty-second stereo excerpts at 44.1 kHz
RENDER_VERSION = 1  # bump when the renderer's output changes, so old cached excerpts are not reused
SIDECAR = "excerpt.json"
PREPARE_DEBOUNCE_MS = 300  # a row must stay selected or hovered this long before it is rendered


@dataclass(frozen=True)
class ExcerptRequest:
    """The part of a suggestion to render: `duration` seconds of `path` from `start`."""

    path: str
    title: str
    start: float
    duration: float
    strategy: str = "auto"
    target_lufs: float | None = fitting.FIT_LUFS

    def key(self) -> str | None:
        """What the render depends on, hashed; None when the source file is gone."""
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        lufs = None if self.target_lufs is None else round(self.target_lufs, 2)
        fields = [RENDER_VERSION, os.path.abspath(self.path), info.st_size, info.st_mtime_ns,
                  round(self.start, 4), round(self.duration, 4), self.strategy, lufs]  # fmt: skip
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
    fitted: bool  # the fitted edit (beats known); False: the plain cut of the best part
    description: str  # how it was made, in words (the plan's description)
    start: float  # where in the source it starts (the fitted edit snaps to a downbeat)
    duration: float  # seconds, exact to the sample at the source's rate


class ExcerptCache:
    """Rendered excerpts on disk, by request key; bounded to `max_bytes`, least recently used out."""

    def __init__(self, folder: Path | None = None, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.folder = Path(folder) if folder is not None else cache_dir() / "excerpts"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # renders finish on several pool threads; one eviction at a time

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
            _touch(entry / SIDECAR)  # least recently *used* goes first
        except (OSError, ValueError, KeyError):
            return None
        if not path.is_file():
            return None
        return Excerpt(path, done["fitted"], done["description"], done["start"], done["duration"])

    def render(self, request: ExcerptRequest, catalog_file: Path | None = None) -> Excerpt:
        """Render `request` into the cache (any thread but the GUI's): the fitted edit with the catalog's
        beats, else the plain cut when no beats are known and BeatNet is not converted."""
        from viml.engine.music.rhythm.network import BeatNetMissingError

        key = request.key()
        if key is None:
            raise UserFacingError(f"{request.path}: the file has vanished; rescan its folder")
        entry = self.folder / key
        entry.mkdir(parents=True, exist_ok=True)
        output = entry / request.file_name
        with _open_catalog(catalog_file) as catalog:
            try:
                plan = fitting.render_excerpt(request.path, request.start, request.duration, output, catalog,
                                              strategy=request.strategy, target_lufs=request.target_lufs)  # fmt: skip
                fitted = True
            except BeatNetMissingError as error:
                log.info("%s: no beats known, a plain excerpt (%s)", request.path, error)
                plan = fitting.render_plain_excerpt(
                    request.path, request.start, request.duration, output, request.target_lufs
                )
                fitted = False
        excerpt = Excerpt(output, fitted, plan.describe(), plan.start, plan.duration)
        sidecar = {"file": output.name, "fitted": fitted, "description": excerpt.description,
                   "start": plan.start, "duration": plan.duration, "source": os.path.abspath(request.path),
                   "plan": plan.to_dict()}  # fmt: skip
        temporary = entry / f".{SIDECAR}.part"
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


def _touch(path: Path) -> None:
    # The clock's own nanoseconds: the file system's write times are coarse (a few ms), so two uses in
    # quick succession could tie and leave the order of eviction to chance.
    now = time.time_ns()
    os.utime(path, ns=(now, now))


@contextlib.contextmanager
def _open_catalog(catalog_file: Path | None):
    """The app's catalog for its stored beats (None when there is none yet: the file is analysed)."""
    if catalog_file is None or not Path(catalog_file).exists():
        yield None
        return
    from viml.catalog.store import Catalog

    with Catalog(catalog_file) as catalog:
        yield catalog


class ExcerptService(QObject):
    """Excerpts for the GUI: cached answers at once, renders on the thread pool (one per key)."""

    ready = Signal(object, object)  # ExcerptRequest, Excerpt
    failed = Signal(object, str)  # ExcerptRequest, message

    def __init__(
        self,
        catalog_file: Callable[[], Path | None],
        cache: ExcerptCache | None = None,
        pool: QThreadPool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cache = cache or ExcerptCache()
        self.catalog_file = catalog_file
        self.pool = pool or QThreadPool.globalInstance()
        self._known: dict[str, Excerpt] = {}
        self._running: dict[str, workers.Task] = {}
        self._background: ExcerptRequest | None = None  # the newest debounced prepare
        self._timer = QTimer(self, singleShot=True, interval=PREPARE_DEBOUNCE_MS)
        self._timer.timeout.connect(self._launch_background)
        self.renders = 0  # renders started (the status bar and tests read it)

    @property
    def busy(self) -> bool:
        return bool(self._running) or self._timer.isActive()

    def cached(self, request: ExcerptRequest) -> Excerpt | None:
        key = request.key()
        if key is None:
            return None
        known = self._known.get(key)
        if known is not None and known.path.is_file():
            return known
        found = self.cache.lookup(request)
        if found is not None:
            self._known[key] = found
        return found

    def prepare(self, request: ExcerptRequest, immediately: bool = False) -> Excerpt | None:
        """The excerpt if it is cached; otherwise None, and `ready` (or `failed`) follows once it is
        rendered. Without `immediately` the render waits for the debounce and for renders in flight."""
        found = self.cached(request)
        if found is not None:
            return found
        if immediately:
            self._start(request)
        else:
            self._background = request
            self._timer.start()
        return None

    def _launch_background(self) -> None:
        if self._running or self._background is None:
            return  # one background render at a time: the newest waits for the one in flight
        request, self._background = self._background, None
        if self.cached(request) is None:
            self._start(request)

    def _start(self, request: ExcerptRequest) -> None:
        key = request.key()
        if key is None:
            self.failed.emit(request, f"{request.path}: the file has vanished; rescan its folder")
            return
        if key in self._running:
            return
        catalog_file = self.catalog_file()
        task = workers.Task(lambda token: self.cache.render(request, catalog_file))
        task.signals.result.connect(lambda excerpt: self._done(key, request, excerpt))
        task.signals.error.connect(lambda message: self._failed(key, request, message))
        self._running[key] = task
        self.renders += 1
        started = time.monotonic()
        task.signals.finished.connect(
            lambda: log.info("excerpt %s: %.2f s", request.file_name, time.monotonic() - started)
        )
        workers.start(task, self.pool)

    def _done(self, key: str, request: ExcerptRequest, excerpt: Excerpt) -> None:
        self._running.pop(key, None)
        self._known[key] = excerpt
        self.ready.emit(request, excerpt)
        self._launch_background()

    def _failed(self, key: str, request: ExcerptRequest, message: str) -> None:
        self._running.pop(key, None)
        self.failed.emit(request, message)
        self._launch_background()
