"""The desktop app's excerpts of suggestions: what a drag carries into an editor and what an audition plays.

The excerpts and their cache are catalog/excerpts.py's (shared with `viml serve`): the app asks in
"auto" mode, so an excerpt is the fitted edit of the suggestion for the clip's length, or, when the
track's beats are not in the catalog and cannot be measured (BeatNet not converted), the plain cut of the
best part with short fades, in `cache_dir()/excerpts` (at most 1 GiB, least recently used out).

Renders run on the thread pool, never on the GUI thread. `ExcerptService.prepare` answers at once from
the cache, or starts the render (once per key) and emits `ready` when it is written. Prepares for
selected or hovered rows are debounced and run one at a time, newest first; a drag or an audition asks
`immediately`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from viml.catalog.excerpts import Excerpt, ExcerptCache, ExcerptRequest
from viml.desktop import workers

log = logging.getLogger(__name__)

PREPARE_DEBOUNCE_MS = 300  # a row must stay selected or hovered this long before it is rendered


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
