"""What the service's routes do, with no HTTP in it: the one search object, deadlines, excerpts.

One `Searcher` at a time: the searcher's per-generation views and the bundle's clip cache are plain
dicts, so searches take a lock (a request waits for the one before it, within its deadline). The
catalog is opened per call in the calling thread (SQLite connections stay in their thread; the views
are kept per catalog generation, so reopening costs nothing), as the desktop app does. Renders take a
lock of their own and run beside searches.

Excerpts: `auto` renders the fitted edit (catalog/fitting.py: cut and looped on the track's downbeats)
when the track's beats are known or can be measured; when the converted BeatNet is missing
(`viml convert-beatnet`) it falls back to the plain excerpt: the part from `start`, exactly `duration`
long, with a short fade in and a fade out, loudness-matched from the part itself. `fitted` refuses
instead of falling back; `plain` never fits. Only catalogued tracks are read: a token holder cannot
use the service to read other files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.catalog.store import Catalog, path_key
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.search import Filters, SearchResult, SegmentHit, Suggestion, SuggestRequest
    from viml.search.searcher import Searcher

EXCERPT_MODES = ("auto", "fitted", "plain")
FIT_LUFS = -16.0  # as `viml suggest --fit`: auditions compare by their music, not their level
FADE_IN_SECONDS = 0.01  # no click at the cut
FADE_OUT_SECONDS = 1.5  # at most; a tenth of a short excerpt
KEPT_RENDERS = 200  # rendered files kept in the cache (the oldest go first)


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
        self, catalog_path: Path, bundle: RuntimeBundle, limits: ServiceLimits | None = None
    ) -> None:
        self.catalog_path = Path(catalog_path)
        self.bundle = bundle
        self.limits = limits or ServiceLimits()
        self._search_lock = threading.Lock()
        self._render_lock = threading.Lock()
        self.renders = cache_dir() / "service"
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
            return searcher.suggest(request, checkpoint=deadline.check)

    def similar(
        self, track: str, start: float | None, end: float | None, filters: Filters, top: int
    ) -> tuple[list[Suggestion], list[SegmentHit]]:
        deadline = self.deadline()
        with self.searcher(deadline) as searcher:
            self._catalogued(searcher.catalog, track)
            return searcher.similar(track, start, end, filters, top)

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

    def _render_file(self, kind: str, path: str, *fields: object) -> Path:
        """A cache file named by what it holds: the source's identity and the render's parameters."""
        info = os.stat(path)
        key = json.dumps([kind, path_key(path), info.st_size, info.st_mtime_ns, *fields])
        return self.renders / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.wav"

    def _prune(self) -> None:
        files = sorted(self.renders.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEPT_RENDERS]:
            with contextlib.suppress(OSError):
                old.unlink()
                old.with_suffix(".json").unlink(missing_ok=True)

    def excerpt(
        self,
        path: str,
        start: float,
        duration: float,
        mode: str = "auto",
        target_lufs: float | None = FIT_LUFS,
    ) -> Rendered:
        """The part of a catalogued track from `start`, `duration` seconds long, rendered as a WAV."""
        if mode not in EXCERPT_MODES:
            raise UserFacingError(f"unknown excerpt mode {mode!r}: choose one of {', '.join(EXCERPT_MODES)}")
        _check_span(start, duration, self.limits.max_excerpt_seconds)
        deadline = self.deadline()
        with self._locked(self._render_lock, deadline), self.catalog() as catalog:
            source = self._catalogued(catalog, path)
            lufs = round(target_lufs, 2) if target_lufs is not None else None
            output = self._render_file("excerpt", source, round(start, 4), round(duration, 4), mode, lufs)
            sidecar = output.with_suffix(".json")
            if output.exists() and sidecar.exists():
                done = json.loads(sidecar.read_text(encoding="utf-8"))
                return Rendered(output, done["kind"], done["note"])
            rendered = self._render(catalog, source, start, duration, mode, target_lufs, output)
            sidecar.write_text(json.dumps({"kind": rendered.kind, "note": rendered.note}), encoding="utf-8")
            self._prune()
            return rendered

    def _render(
        self, catalog: Catalog, source: str, start: float, duration: float, mode: str,
        target_lufs: float | None, output: Path,
    ) -> Rendered:  # fmt: skip
        from viml.catalog.fitting import render_excerpt
        from viml.engine.music.rhythm.network import BeatNetMissingError

        if mode != "plain":
            try:
                plan = render_excerpt(source, start, duration, output, catalog, target_lufs=target_lufs)
                return Rendered(output, "fitted", plan.describe())
            except BeatNetMissingError as error:
                if mode == "fitted":
                    raise UserFacingError(
                        f"{source}: its beats are not in the catalog and cannot be measured: {error}"
                    ) from error
                why = "no beats known for this track and BeatNet not converted (`viml convert-beatnet`)"
        else:
            why = "asked for"
        plain_excerpt(source, start, duration, output, target_lufs)
        return Rendered(output, "plain", f"plain excerpt with fades ({why})")

    def preview(self, path: str, start: float, duration: float) -> Rendered:
        """The track as it is (no fades, no gain) from `start`, at most `duration` seconds."""
        _check_span(start, duration, self.limits.max_preview_seconds)
        deadline = self.deadline()
        with self._locked(self._render_lock, deadline), self.catalog() as catalog:
            source = self._catalogued(catalog, path)
            output = self._render_file("preview", source, round(start, 4), round(duration, 4))
            if not output.exists():
                plain_excerpt(source, start, duration, output, None, fades=False, pad=False)
                self._prune()
            return Rendered(output, "preview", "the track as it is")


def _check_span(start: float, duration: float, longest: float) -> None:
    if not (math.isfinite(start) and start >= 0):
        raise UserFacingError(f"start must be a time >= 0, got {start}")
    if not (math.isfinite(duration) and 0 < duration <= longest):
        raise UserFacingError(f"duration must be above 0 and at most {longest:g} s, got {duration}")


def plain_excerpt(
    path: str | os.PathLike, start: float, duration: float, output: Path, target_lufs: float | None,
    fades: bool = True, pad: bool = True,
) -> Path:  # fmt: skip
    """[start, start + duration) of the source at its own rate and channels; silence after the track's
    end when `pad` (the excerpt is then exactly `duration` long, as a fitted one is)."""
    from viml.engine.music import fit
    from viml.engine.music.rhythm.loudness import integrated_loudness

    audio, rate = fit.read_source_audio(path)
    first, count = round(start * rate), round(duration * rate)
    if first >= len(audio):
        raise UserFacingError(
            f"{path}: starts at {start:g} s but the track is {len(audio) / rate:.1f} s long"
        )
    part = audio[first : first + count].copy()
    if pad and len(part) < count:
        part = np.concatenate([part, np.zeros((count - len(part), part.shape[1]), part.dtype)])
    if fades:
        rise = min(len(part), round(FADE_IN_SECONDS * rate))
        fall = min(len(part), round(min(FADE_OUT_SECONDS, duration / 10) * rate))
        part[:rise] *= np.linspace(0.0, 1.0, rise, dtype=np.float32)[:, None]
        part[len(part) - fall :] *= np.linspace(1.0, 0.0, fall, dtype=np.float32)[:, None]
    if target_lufs is not None:
        loudness = integrated_loudness(part.mean(axis=1), rate)
        peak = float(np.abs(part).max()) if part.size else 0.0
        part = part * fit.gain_to_target(loudness, target_lufs, peak=peak)
    return fit.write_audio(output, part, rate)
