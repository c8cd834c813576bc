"""What the service's routes do, with no HTTP in it: the one search object, deadlines, excerpts.

One `Searcher` at a time: the searcher's per-generation views and the bundle's clip cache are plain
dicts, so searches take a lock (a request waits for the one before it, within its deadline). The
catalog is opened per call in the calling thread (SQLite connections stay in their thread; the views
are kept per catalog generation, so reopening costs nothing), as the desktop app does. Renders take a
lock of their own and run beside searches.

Excerpts and previews are catalog/excerpts.py's, in its cache (the desktop app's too): `auto` renders the
fitted edit (cut and looped on the track's downbeats) when the track's beats are known or can be
measured, else it falls back to the plain cut (fitting.render_plain_excerpt) and says why; `fitted`
refuses instead of falling back; `plain` never fits; a preview is the track's own samples. Only
catalogued tracks are read: a token holder cannot use the service to read other files.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from viml.catalog.excerpts import FALLBACK_REASON, RAW, Excerpt, ExcerptCache, ExcerptRequest, check_mode
from viml.catalog.excerpts import MODES as EXCERPT_MODES
from viml.catalog.fitting import FIT_LUFS
from viml.catalog.store import Catalog, Mark
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.search import Filters, SearchResult, SegmentHit, Suggestion, SuggestRequest
    from viml.search.searcher import Searcher

# EXCERPT_MODES and FIT_LUFS are the shared ones (catalog/), named here for app.py.
__all__ = ["EXCERPT_MODES", "FIT_LUFS", "NotFoundError", "Rendered", "ServiceLimits", "TimedOutError", "Work"]


@dataclass(frozen=True)
class ServiceLimits:
    max_json_bytes: int = 1 << 20  # a JSON request body
    max_upload_bytes: int = 64 << 20  # an uploaded still or short clip
    timeout_s: float = 120.0  # a request's work, waiting for the lock included
    max_excerpt_seconds: float = 600.0
    max_preview_seconds: float = 120.0


class NotFoundError(UserFacingError):
    """A track the request names is not in the catalog (HTTP 404)."""


class TimedOutError(UserFacingError):
    """The request's work did not finish within the service's time-out (HTTP 504)."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return self.until - time.monotonic()

    def check(self) -> None:
        if self.remaining <= 0:
            raise TimedOutError(f"the request took longer than the service's time-out ({self.seconds:g} s)")


@dataclass(frozen=True)
class Rendered:
    path: Path
    kind: str  # fitted | plain | preview
    note: str  # what was done (the fit plan's description, or why it is plain)


class Work:
    def __init__(
        self,
        catalog_path: Path,
        bundle: RuntimeBundle,
        limits: ServiceLimits | None = None,
        excerpts: ExcerptCache | None = None,
    ) -> None:
        self.catalog_path = Path(catalog_path)
        self.bundle = bundle
        self.limits = limits or ServiceLimits()
        self.excerpts = excerpts or ExcerptCache()
        self._search_lock = threading.Lock()
        self._render_lock = threading.Lock()
        self.renders = cache_dir() / "service"  # the service's own scratch files (uploads)
        self.renders.mkdir(parents=True, exist_ok=True)

    def deadline(self) -> Deadline:
        return Deadline(self.limits.timeout_s)

    @contextlib.contextmanager
    def _locked(self, lock: threading.Lock, deadline: Deadline) -> Iterator[None]:
        wait = deadline.remaining
        if not lock.acquire(timeout=-1 if math.isinf(wait) else max(0.0, wait)):
            deadline.check()
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def catalog(self) -> Iterator[Catalog]:
        with Catalog(self.catalog_path, must_exist=True) as catalog:
            yield catalog

    @contextlib.contextmanager
    def searcher(self, deadline: Deadline) -> Iterator[Searcher]:
        from viml.search import Searcher

        with self._locked(self._search_lock, deadline), self.catalog() as catalog:
            yield Searcher(catalog, self.bundle)

    # -- searches -----------------------------------------------------------------------------------

    def prepare(self) -> int:
        """Embed tracks missing from the bundle's space and warm the prompt encoder (before listening)."""
        self.bundle.prompt_encoder.encode_texts(["music"])
        with self.searcher(Deadline(math.inf)) as searcher:
            return searcher.prepare()

    def suggest(self, request: SuggestRequest) -> SearchResult:
        deadline = self.deadline()
        with self.searcher(deadline) as searcher:
            if request.like is not None:  # only a catalogued track: no other file is read for a request
                from viml.search.like import parse_like

                self._catalogued(searcher.catalog, parse_like(request.like).track)
            return searcher.suggest(request, checkpoint=deadline.check)

    def similar(
        self, track: str, start: float | None, end: float | None, filters: Filters, top: int
    ) -> tuple[list[Suggestion], list[SegmentHit]]:
        deadline = self.deadline()
        with self.searcher(deadline) as searcher:
            self._catalogued(searcher.catalog, track)
            return searcher.similar(track, start, end, filters, top)

    def mark(self, track: str, origin: str, **clip) -> Mark:
        """Record a catalogued track as used in an edit; `clip`: Catalog.add_mark's video, video_in,
        video_out, music_offset, project (it checks each one)."""
        with self.catalog() as catalog:
            self._catalogued(catalog, track)
            return catalog.add_mark(track, origin=origin, **clip)

    def status(self) -> dict:
        bundle = self.bundle
        found: dict = {
            "bundle": {
                "name": bundle.name,
                "kind": bundle.kind,
                "reads_pictures": bundle.reads_pictures,
                "folder": str(bundle.folder),
                "analysis": bundle.analysis.describe(),
            },
            "limits": {
                "max_json_bytes": self.limits.max_json_bytes,
                "max_upload_bytes": self.limits.max_upload_bytes,
                "timeout_s": self.limits.timeout_s,
                "max_excerpt_seconds": self.limits.max_excerpt_seconds,
                "max_preview_seconds": self.limits.max_preview_seconds,
            },
        }
        with self.catalog() as catalog:
            catalog_id, generation = catalog.state()
            found["catalog"] = {
                "path": str(self.catalog_path),
                "id": catalog_id,
                "generation": generation,
                **catalog.counts(),
                "read_only": catalog.read_only,
                "rhythm_measured": len(catalog.measured_tempos()),
            }
        return found

    # -- audio --------------------------------------------------------------------------------------

    @staticmethod
    def _catalogued(catalog: Catalog, path: str) -> str:
        track = catalog.track(path)
        if track is None:
            raise NotFoundError(f"{path} is not in the catalog (only catalogued tracks are served)")
        if not os.path.exists(track.path):
            raise NotFoundError(f"{path}: the file has vanished since the scan")
        return track.path

    def _cached(self, request: ExcerptRequest, catalog: Catalog, deadline: Deadline) -> Excerpt:
        """The cached render, else rendered now (one at a time: a request waits within its deadline)."""
        found = self.excerpts.lookup(request)
        if found is None:
            with self._locked(self._render_lock, deadline):
                found = self.excerpts.lookup(request) or self.excerpts.render(request, catalog)
        return found

    def excerpt(
        self,
        path: str,
        start: float,
        duration: float,
        mode: str = "auto",
        target_lufs: float | None = FIT_LUFS,
    ) -> Rendered:
        """The part of a catalogued track from `start`, `duration` seconds long, rendered as a WAV."""
        check_mode(mode)  # the raw part is the preview's route, not a mode to ask for
        _check_span(start, duration, self.limits.max_excerpt_seconds)
        deadline = self.deadline()
        with self.catalog() as catalog:
            source = self._catalogued(catalog, path)
            request = ExcerptRequest(source, "", start, duration, target_lufs=target_lufs, mode=mode)
            done = self._cached(request, catalog, deadline)
        if done.fitted:
            return Rendered(done.path, "fitted", done.description)
        why = FALLBACK_REASON if done.fell_back else "asked for"
        return Rendered(done.path, "plain", f"plain excerpt ({why}): {done.description}")

    def preview(self, path: str, start: float, duration: float) -> Rendered:
        """The track as it is (no fades, no gain) from `start`, at most `duration` seconds."""
        _check_span(start, duration, self.limits.max_preview_seconds)
        deadline = self.deadline()
        with self.catalog() as catalog:
            source = self._catalogued(catalog, path)
            request = ExcerptRequest(source, "", start, duration, target_lufs=None, mode=RAW)
            done = self._cached(request, catalog, deadline)
        return Rendered(done.path, "preview", "the track as it is")


def _check_span(start: float, duration: float, longest: float) -> None:
    if not (math.isfinite(start) and start >= 0):
        raise UserFacingError(f"start must be a time >= 0, got {start}")
    if not (math.isfinite(duration) and 0 < duration <= longest):
        raise UserFacingError(f"duration must be above 0 and at most {longest:g} s, got {duration}")
