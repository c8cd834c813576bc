"""Scanning a music folder into the catalog: discover → stat check → fingerprint → analyse → write.

- Incremental: a file whose size and mtime match the catalog costs one stat; nothing is read or decoded.
- Moved/renamed/duplicate files: the content hash finds the stored analysis, so no decode either.
- Resumable: each file is committed on its own (see store.py), so a killed scan loses at most the files
  in flight; the next scan skips everything already committed.
- Parallel: fingerprints and analyses run in worker processes; this process is the only writer.
- Faults: a worker that dies (a segfault in a decoder, the OOM killer) fails only the file it had and a
  new worker takes over; workers die with the scan, even after kill -9; one scan per catalog at a time.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_any
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from viml.catalog import analysis
from viml.catalog.analysis import FileFailure
from viml.catalog.store import Catalog, Fingerprint, path_key, scan_lock
from viml.core.errors import UserFacingError
from viml.engine.media.extensions import AUDIO_EXTENSIONS
from viml.engine.music.types import MusicSegments

if TYPE_CHECKING:
    from viml.catalog.scan_ray import RayExecutor

EVENTS = """The scan's progress as events (`viml scan --events`: one JSON object per line on stdout).

    {"event": "started", "root": R, "files": N, "to_do": K, "unchanged": U, "analysis": ID}
        after the stat pass: N audio files under R, K of them to fingerprint or analyse, U skipped
        unchanged (or unchanged and failing before), ID the analysis spec the scan follows;
    {"event": "file", "path": P, "outcome": O, "done": D, "to_do": K [, "kind": KIND, "message": M]}
        file P committed to the catalog (D of K); O is analysed | linked | touched | failed (with the
        failure's kind and message);
    {"event": "summary", ...}
        last line: the summary `viml scan --json` prints (counts, failures, the bundle's search space).
"""
EventSink = Callable[[dict], None]


def _ignore(event: dict) -> None:
    pass


@dataclass
class ScanSummary:
    root: str
    run: int = 0
    seen: int = 0
    unchanged: int = 0
    analysed: int = 0
    linked: int = 0  # new, moved or duplicate files whose content was already analysed
    touched: int = 0  # mtime changed, content did not
    removed: int = 0
    still_failing: int = 0  # known-bad files that did not change since the last scan
    reanalysed: int = 0  # unchanged files analysed again: another analysis spec, or --reanalyze
    analysis: str = ""  # the analysis spec files were analysed with (its id)
    rhythm: str | None = None  # the rhythm analysis (beats, sections, loudness) it added; None: none
    rhythm_measured: int = 0  # analysed files whose rhythm was measured only (their analysis was current)
    rhythm_failed: int = 0  # files whose rhythm could not be measured (their music analysis stands)
    waveforms_measured: int = 0  # analysed files whose waveform was measured only (from before waveforms)
    waveforms_failed: int = 0  # files whose waveform could not be measured (recorded, like a failed file)
    # unchanged files whose rhythm / waveform failed before: not measured again (--retry-failed does)
    measures_still_failing: int = 0
    measure_failures: list[dict] = field(default_factory=list)  # this scan's: path, what, kind, message
    audio_seconds: float = 0.0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)  # reason -> count (not audio, loops)
    failures: list[FileFailure] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "root": self.root,
            "run": self.run,
            "seen": self.seen,
            "unchanged": self.unchanged,
            "analysed": self.analysed,
            "linked": self.linked,
            "touched": self.touched,
            "removed": self.removed,
            "still_failing": self.still_failing,
            "reanalysed": self.reanalysed,
            "analysis": self.analysis,
            "rhythm": self.rhythm,
            "rhythm_measured": self.rhythm_measured,
            "rhythm_failed": self.rhythm_failed,
            "waveforms_measured": self.waveforms_measured,
            "waveforms_failed": self.waveforms_failed,
            "measures_still_failing": self.measures_still_failing,
            "measure_failures": self.measure_failures,
            "audio_seconds": round(self.audio_seconds, 3),
            "seconds": round(self.seconds, 3),
            "skipped": dict(self.skipped),
            "failed": dict(Counter(f.kind for f in self.failures)),
            "failures": [
                {"path": path_key(f.path), "kind": f.kind, "message": f.message} for f in self.failures
            ],
        }


def discover(root: str, summary: ScanSummary) -> list[tuple[str, os.stat_result | None]]:
    """Audio files under root (following folder links once each), with their stat when it worked; a file
    given as the root is itself the one file, whatever its name."""
    if os.path.isfile(root):
        return [(root, os.stat(root))]
    found: list[tuple[str, os.stat_result | None]] = []
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
        except OSError as error:
            summary.failures.append(
                FileFailure(folder, None, None, "unreadable", error.strerror or str(error))
            )
            continue
        if (info.st_dev, info.st_ino) in visited:
            summary.skipped["folder link already scanned (loop or duplicate)"] += 1
            continue
        visited.add((info.st_dev, info.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            summary.failures.append(
                FileFailure(folder, None, None, "unreadable", error.strerror or str(error))
            )
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(entry.path)
                continue
            if os.path.splitext(entry.name)[1].lower() not in AUDIO_EXTENSIONS:
                summary.skipped["not an audio file name"] += 1
                continue
            try:
                found.append((entry.path, entry.stat()))
            except OSError:
                found.append((entry.path, None))  # broken or looping link: fingerprint reports why
    found.sort(key=lambda item: os.fsencode(item[0]))
    return found


def scan(
    catalog: Catalog,
    root: str | os.PathLike,
    analyzer_spec: str = analysis.DEFAULT_ANALYZER,
    jobs: int | None = None,
    progress: bool = True,
    reanalyze: bool = False,
    bundle: str | os.PathLike | None = None,
    on_event: EventSink | None = None,
    ray: str | None = None,
    retry_failed: bool = False,
) -> ScanSummary:
    """Bring the catalog up to date with the audio files under `root`.

    `on_event` receives the scan's progress as events (see EVENTS) as each file is committed.

    `bundle` (a bundle folder): analyse with its own music model and analysis spec; files analysed under
    another spec are re-analysed, so a search never meets an analysis its bundle cannot read.
    `reanalyze`: analyse every file again, changed or not.
    `retry_failed`: try again the unchanged files that failed before, and the rhythms and waveforms whose
    measurement failed (by default, like a failed file, they wait until the file changes).
    `ray`: analyse on a Ray cluster (catalog/scan_ray.py) at this address ("" starts a local one); this
    process still writes every file, so the scan stays resumable.
    """
    started = time.perf_counter()
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root) and not os.path.isfile(root):
        raise UserFacingError(f"{root}: no such folder or file")
    with scan_lock(catalog.path), _analysis_bundle(bundle):
        return _scan(
            catalog,
            root,
            analyzer_spec,
            jobs,
            progress,
            reanalyze,
            started,
            on_event or _ignore,
            ray,
            retry_failed,
        )


@contextlib.contextmanager
def _analysis_bundle(bundle: str | os.PathLike | None) -> Iterator[None]:
    """The bundle whose spec this scan follows, for this process and the workers it starts."""
    previous = os.environ.get(analysis.BUNDLE_ENV)
    if bundle is not None:
        os.environ[analysis.BUNDLE_ENV] = os.fspath(bundle)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(analysis.BUNDLE_ENV, None)
        else:
            os.environ[analysis.BUNDLE_ENV] = previous


def _scan(
    catalog: Catalog,
    root: str,
    analyzer_spec: str,
    jobs: int | None,
    progress: bool,
    reanalyze: bool,
    started: float,
    on_event: EventSink,
    ray: str | None = None,
    retry_failed: bool = False,
) -> ScanSummary:
    summary = ScanSummary(root=path_key(root))
    files = discover(root, summary)
    summary.seen = len(files)
    known = catalog.known_files(path_key(root))
    analyzer_id = analysis.expected_analyzer_id(analyzer_spec)
    summary.analysis = analyzer_id
    # Files analysed under another spec are redone even when unchanged (decided here, not at search time).
    stale = catalog.tracks_analysed_otherwise(summary.root, None if reanalyze else analyzer_id)
    rhythm_id = analysis.expected_rhythm_id(analyzer_spec)
    summary.rhythm = rhythm_id
    # Analysed tracks the rhythm analysis has not measured: fingerprinted again, then only measured.
    unmeasured = catalog.tracks_without_rhythm(summary.root, rhythm_id, retry_failed) if rhythm_id else {}
    # ... and the same for tracks without a waveform (one decode measures both).
    waveforms = analysis.expected_waveforms(analyzer_spec)
    unwaved = catalog.tracks_without_waveform(summary.root, retry_failed) if waveforms else {}
    # Failed measurements wait, like failed files, until the file changes (or --retry-failed).
    measures_failed = {
        failure["path"] for failure in catalog.measure_failures(summary.root)
        if (failure["what"] == "rhythm" and failure["analysis"] == rhythm_id)
        or (failure["what"] == "waveform" and waveforms)
    }  # fmt: skip
    old_words = catalog.tracks_with_old_words(summary.root)  # tags read by an older reader: read again
    seen_keys = set()
    todo: list[str] = []
    reread: list[str] = []
    # Unchanged analysed files that only lack a rhythm or a waveform: measured from their stored hash, not
    # fingerprinted (hashed) again; like every unchanged file they are trusted by size and mtime.
    measure_only: list[Fingerprint] = []
    for path, info in files:
        key = path_key(path)
        seen_keys.add(key)
        before = known.get(key)
        unchanged = info is not None and before is not None and (info.st_size, info.st_mtime_ns) == before[:2]
        measure = key in unmeasured or key in unwaved
        if unchanged and key not in stale and measure and before is not None and before[2] is None:
            assert info is not None
            summary.unchanged += 1
            if key in old_words:
                reread.append(path)
            content = unmeasured.get(key) or unwaved[key]
            measure_only.append(Fingerprint(path, info.st_size, info.st_mtime_ns, content))
            continue
        if unchanged and key not in stale and not (measure and before and before[2] is None):
            assert before is not None
            if before[2] is None:
                summary.unchanged += 1
                summary.measures_still_failing += key in measures_failed
                if key in old_words:
                    reread.append(path)
                continue
            if not retry_failed:
                summary.still_failing += 1
                continue
        todo.append(path)  # fingerprint reports non-regular files without opening them
    gone = [key for key in known if key not in seen_keys]
    if gone:
        catalog.remove_paths(gone)
        summary.removed = len(gone)

    analyzer = analysis.load_analyzer(analyzer_spec) if todo or measure_only else None
    if analyzer is not None and analyzer.id != analyzer_id:
        raise UserFacingError(f"music model {analyzer_spec!r} changed its id while loading; scan again")
    summary.run = catalog.start_run(summary.root, analyzer_id)
    on_event({"event": "started", "root": summary.root, "files": summary.seen, "to_do": len(todo),
              "unchanged": summary.unchanged + summary.still_failing, "analysis": analyzer_id})  # fmt: skip
    in_flight = _InFlight(catalog.path)
    suspect = in_flight.read()
    status = "interrupted"
    try:
        _reread_words(catalog, reread, progress)
        if todo or measure_only:
            assert analyzer is not None
            # The last one-process scan died on this file (a crash in the decoder, or kill -9): this time
            # it runs in a worker process, so a crash costs the file, not the scan.
            isolate = suspect is not None and suspect in {os.fsencode(path) for path in todo}
            redo = set(stale.values())
            _process(
                catalog,
                todo,
                analyzer,
                analyzer_spec,
                jobs,
                progress,
                redo,
                summary,
                known,
                isolate,
                on_event,
                set(unmeasured.values()),
                ray,
                set(unwaved.values()),
                measure_only,
            )
        status = "done"
    finally:
        in_flight.clear()
        summary.seconds = time.perf_counter() - started
        catalog.finish_run(summary.run, status, summary.as_dict())
    return summary


def _reread_words(catalog: Catalog, paths: list[str], progress: bool, batch: int = 200) -> None:
    """Unchanged tracks whose words an older tag reader made: their tags read again (no hash, no decode),
    committed `batch` files at a time, so a killed scan keeps what it did and the next one does the rest."""
    from tqdm import tqdm

    with tqdm(total=len(paths), unit="file", disable=not progress or not paths, desc="words") as bar:
        for first in range(0, len(paths), batch):
            chunk = paths[first : first + batch]
            read = [(path, analysis.read_file_tags(path)) for path in chunk]
            catalog.refresh_words([(path, tags if kind else None) for path, (kind, _, tags) in read])
            bar.update(len(chunk))


def _process(
    catalog: Catalog,
    todo: list[str],
    analyzer: analysis.Analyzer,
    spec: str,
    jobs: int | None,
    progress: bool,
    redo: set[str],
    summary: ScanSummary,
    known: dict,
    isolate: bool = False,
    on_event: EventSink = _ignore,
    unmeasured: set[str] | None = None,
    ray: str | None = None,
    unwaved: set[str] | None = None,
    measure_only: list[Fingerprint] | None = None,
) -> None:
    from tqdm import tqdm

    unmeasured = unmeasured or set()  # content hashes without the scan's rhythm
    unwaved = unwaved or set()  # ... without a waveform
    to_measure = list(reversed(measure_only or []))  # unchanged files to measure only (no fingerprint)
    work = len(todo) + len(to_measure)

    executor: _InlineExecutor | _Pool | RayExecutor
    if ray is not None:  # same driver loop; the analyses run on the cluster's actors
        from viml.catalog.scan_ray import RayExecutor

        executor = RayExecutor(ray or None, min(jobs, work) if jobs else None, spec)
        jobs = min(executor.workers, work)
    elif (jobs := max(1, min(jobs or analysis.usable_cores(), work))) == 1 and not isolate:
        analysis._worker_analyzer = analyzer
        executor = _InlineExecutor(_InFlight(catalog.path))
    else:
        executor = _Pool(jobs, spec)
    bar = tqdm(total=len(todo), unit="file", disable=not progress, desc="scan", dynamic_ncols=True)
    pending: dict[cf.Future, tuple[str, object]] = {}
    waiting: dict[str, list[Fingerprint]] = {}  # content hash being analysed -> other files with it
    queue = list(reversed(todo))
    window = 2 * jobs  # enough work in flight to keep every worker busy, little lost on a kill

    done = 0

    def done_with(path: str, outcome: str, failure: FileFailure | None = None) -> None:
        nonlocal done
        done += 1
        bar.update(1)
        event = {
            "event": "file",
            "path": path_key(path),
            "outcome": outcome,
            "done": done,
            "to_do": len(todo),
        }
        if failure is not None:
            event.update(kind=failure.kind, message=failure.message)
        on_event(event)

    def measure_now(fp: Fingerprint) -> None:
        """Measure what the content's stored analysis lacks (rhythm, waveform), once per content."""
        rhythm = fp.hash in unmeasured and bool(getattr(analyzer, "rhythm_id", None))
        waveform = fp.hash in unwaved
        if rhythm or waveform:
            unmeasured.discard(fp.hash)
            unwaved.discard(fp.hash)
            # A content without stored segments (a hand-made or truncated old catalog) is still measured;
            # its rhythm's sections then come from the sound alone.
            stored = catalog.music_segments(fp.hash) if catalog.has_segments(fp.hash) else None
            embeddings, starts = (stored.embeddings, stored.starts) if stored is not None else (None, None)
            job = analysis.MeasureJob(fp, embeddings, starts, rhythm, waveform)
            pending[executor.submit(analysis.worker_measure, job)] = ("measure", job)

    def fail(failure: FileFailure) -> None:
        catalog.write_error(
            failure.path, failure.size, failure.mtime_ns, failure.kind, failure.message, summary.run
        )
        summary.failures.append(failure)
        done_with(failure.path, "failed", failure)

    try:
        while queue or pending or to_measure:
            while to_measure and len(pending) < window:
                measure_now(to_measure.pop())
            while queue and len(pending) < window:
                path = queue.pop()
                pending[executor.submit(analysis.worker_fingerprint, path)] = ("fingerprint", path)
            for future in executor.wait():
                stage, payload = pending.pop(future)
                result = future.result()
                if stage == "measure":
                    # The file itself is done (touched or linked); only its rhythm and/or waveform were
                    # still measured. A failure leaves them missing and is recorded, so that the next scan
                    # does not decode the file again while it is unchanged (--retry-failed does).
                    job: analysis.MeasureJob = payload  # type: ignore[assignment]
                    if isinstance(result, FileFailure):
                        summary.rhythm_failed += job.rhythm
                        summary.waveforms_failed += job.waveform
                        failed = {"rhythm": analyzer.rhythm_id} if job.rhythm else {}  # type: ignore[attr-defined]
                        failed |= {"waveform": ""} if job.waveform else {}
                        catalog.write_measure_failures(
                            job.fp.hash, failed, f"{result.kind}: {result.message}"
                        )
                        summary.measure_failures.append({"path": path_key(job.path), "what": sorted(failed),
                                                         "kind": result.kind, "message": result.message})  # fmt: skip
                    else:
                        if result.rhythm is not None:
                            catalog.write_rhythm(job.fp.hash, analyzer.rhythm_id, result.rhythm)  # type: ignore[attr-defined]
                            summary.rhythm_measured += 1
                        if result.waveform is not None:
                            catalog.write_waveform(job.fp.hash, result.waveform)
                            summary.waveforms_measured += 1
                    continue
                if isinstance(result, FileFailure):
                    fail(result)
                    for twin in waiting.pop(getattr(payload, "hash", ""), []):
                        fail(FileFailure(twin.path, twin.size, twin.mtime_ns, result.kind, result.message))
                elif stage == "fingerprint":
                    outcome = _route(catalog, result, analyzer.id, redo, summary, waiting, pending, executor)
                    if outcome is not None:
                        done_with(result.path, outcome)
                        measure_now(result)
                else:
                    fp: Fingerprint = payload  # type: ignore[assignment]
                    music: MusicSegments = result
                    catalog.write_analysis(fp, analyzer.id, music, summary.run)
                    unmeasured.discard(fp.hash)
                    unwaved.discard(fp.hash)
                    summary.analysed += 1
                    if fp.hash in redo:
                        summary.reanalysed += 1
                        redo.discard(fp.hash)  # its twins in this scan link to the new analysis
                    summary.audio_seconds += float(music.ends[-1])
                    done_with(fp.path, "analysed")
                    for twin in waiting.pop(fp.hash, []):
                        catalog.link_track(twin, summary.run)
                        summary.linked += 1
                        done_with(twin.path, "linked")
                bar.set_postfix(audio=f"{summary.audio_seconds / 60:.0f} min", failed=len(summary.failures))
    finally:
        bar.close()
        executor.shutdown()


def _route(
    catalog: Catalog,
    fp: Fingerprint,
    analyzer_id: str,
    redo: set[str],
    summary: ScanSummary,
    waiting: dict[str, list[Fingerprint]],
    pending: dict,
    executor: _InlineExecutor | _Pool | RayExecutor,
) -> str | None:
    """Decide what a fingerprinted file needs: nothing new, a track row, or an analysis. Returns the
    outcome when the file is done ("touched", "linked"), None when it waits for an analysis."""
    if fp.hash in waiting:  # same content already being analysed in this scan
        waiting[fp.hash].append(fp)
        return None
    if catalog.content_analyzer(fp.hash) == analyzer_id and fp.hash not in redo:
        if catalog.track_hash(fp.path) == fp.hash:
            catalog.touch_track(fp)
            summary.touched += 1
            return "touched"
        catalog.link_track(fp, summary.run)
        summary.linked += 1
        return "linked"
    waiting[fp.hash] = []
    pending[executor.submit(analysis.worker_analyze, fp)] = ("analyse", fp)
    return None


Task = Callable[..., object]


def _path_of(argument: object) -> str:
    return argument.path if isinstance(argument, (Fingerprint, analysis.MeasureJob)) else str(argument)


class _InFlight:
    """CATALOG-scan.inflight names the file a one-process scan is working on. A scan that dies there (a
    crash in a decoder takes the scan with it; or kill -9) leaves it behind, and the next scan then works
    in worker processes (`isolate`), where a crash costs only that file."""

    def __init__(self, catalog_path: str | os.PathLike) -> None:
        self.path = f"{os.fspath(catalog_path)}-scan.inflight"

    def read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as handle:
                return handle.read() or None
        except OSError:
            return None

    def set(self, file_path: str) -> None:
        with open(self.path + ".new", "wb") as handle:
            handle.write(os.fsencode(file_path))
        os.replace(self.path + ".new", self.path)  # never a half-written name

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _InlineExecutor:
    """The one-core path, with no process start-up cost: tasks run in this process one at a time, in the
    order they were submitted, when the scan asks for the next result. So each analysis is committed
    before the next one starts, and a kill loses at most the file being analysed (named in `in_flight`)."""

    def __init__(self, in_flight: _InFlight) -> None:
        self._queue: collections.deque[tuple[cf.Future, Task, object]] = collections.deque()
        self._in_flight = in_flight

    def submit(self, fn: Task, argument: object) -> cf.Future:
        future: cf.Future = cf.Future()
        self._queue.append((future, fn, argument))
        return future

    def wait(self) -> list[cf.Future]:
        future, fn, argument = self._queue.popleft()
        self._in_flight.set(_path_of(argument))
        future.set_result(fn(argument))
        return [future]

    def shutdown(self) -> None:
        self._queue.clear()


@dataclass
class _Worker:
    process: BaseProcess
    connection: Connection
    ready: bool = False  # the analyzer is loaded
    task: tuple[cf.Future, object] | None = None  # the one task it has: future, argument


class _Pool:
    """Worker processes fed one task at a time, each through its own pipe: when one dies (a segfault in a
    decoder, the OOM killer) the scan knows the file it had, fails that file alone (kind "crashed") and
    starts a new worker. A worker that dies before its analyzer is loaded stops the scan (a broken model
    would otherwise fail every file)."""

    def __init__(self, jobs: int, spec: str) -> None:
        self._context = multiprocessing.get_context("spawn")  # no fork after model threads started
        self._spec = spec
        self._threads = analysis.threads_per_worker(jobs)
        self._backlog: collections.deque[tuple[cf.Future, Task, object]] = collections.deque()
        self._workers = [self._start() for _ in range(jobs)]

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(theirs, self._spec, self._threads, os.getpid()),
            name="viml-scan-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def submit(self, fn: Task, argument: object) -> cf.Future:
        future: cf.Future = cf.Future()
        self._backlog.append((future, fn, argument))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker.task is not None or not self._backlog:
                continue
            future, fn, argument = self._backlog[0]
            try:
                worker.connection.send((fn, argument))
            except OSError:  # it died idle (nothing was lost; a new one takes over) or while loading
                self._died(index, worker)
                continue
            self._backlog.popleft()
            worker.task = (future, argument)

    def wait(self) -> list[cf.Future]:
        """Block until at least one task is done; a worker's death finishes its task as a FileFailure."""
        done: list[cf.Future] = []
        while not done:
            ready = wait_for_any(
                [w.connection for w in self._workers] + [w.process.sentinel for w in self._workers]
            )
            for index, worker in enumerate(self._workers):
                if worker.connection not in ready and worker.process.sentinel not in ready:
                    continue
                try:  # a dead worker's pipe reads as end of file (after any result it sent)
                    message = worker.connection.recv() if worker.connection.poll(1.0) else None
                except (EOFError, OSError):
                    message = None
                if message is None:
                    done += self._died(index, worker)
                elif message[0] == "ready":
                    worker.ready = True
                elif message[0] == "failed":
                    raise UserFacingError(message[1])
                else:
                    assert worker.task is not None
                    future, _ = worker.task
                    worker.task = None
                    future.set_result(message[1])
                    done.append(future)
            self._dispatch()
        return done

    def _died(self, index: int, worker: _Worker) -> list[cf.Future]:
        worker.process.join(5)
        if worker.process.is_alive():  # closed its pipe but did not exit: it is of no use
            worker.process.kill()
            worker.process.join()
        how = _how_it_ended(worker.process.exitcode)
        if not worker.ready:
            raise UserFacingError(f"the analyser process died while loading {self._spec} ({how})")
        self._workers[index] = self._replace(worker)
        if worker.task is None:
            return []
        future, argument = worker.task
        future.set_result(_crashed(argument, how))
        return [future]

    def _replace(self, worker: _Worker) -> _Worker:
        worker.connection.close()
        worker.process.join(1)
        return self._start()

    def shutdown(self) -> None:
        for worker in self._workers:
            if worker.ready and worker.task is None:
                with contextlib.suppress(OSError):
                    worker.connection.send(None)  # idle: exit now
            else:
                worker.process.kill()  # busy (the scan failed or was interrupted) or still loading
        for worker in self._workers:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"exit status {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = str(-exitcode)
    return f"signal {name}" + (", perhaps out of memory" if -exitcode == signal.SIGKILL else "")


def _crashed(argument: object, how: str) -> FileFailure:
    path = _path_of(argument)
    if isinstance(argument, Fingerprint):
        size, mtime_ns = argument.size, argument.mtime_ns
    else:  # the stat lets the next scan skip the file until it changes
        try:
            info = os.stat(path)
            size, mtime_ns = info.st_size, info.st_mtime_ns
        except OSError:
            size = mtime_ns = None
    message = f"the analyser process died ({how}) while reading this file"
    return FileFailure(path, size, mtime_ns, "crashed", message)


def _worker_main(connection: Connection, spec: str, threads: int, parent: int) -> None:
    """A worker process: load the analyzer, then run the tasks it is sent, one at a time, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the scan, which then ends its workers
    _die_with_parent(parent)
    try:
        analysis.worker_init(spec, threads)
    except Exception as error:
        text = str(error) if isinstance(error, UserFacingError) else f"{error.__class__.__name__}: {error}"
        connection.send(("failed", f"the music model {spec!r} did not load: {text}"))
        return
    connection.send(("ready", None))
    try:
        while (task := connection.recv()) is not None:
            fn, argument = task
            connection.send(("done", fn(argument)))
    except (EOFError, BrokenPipeError):  # the scan is gone
        return


def _die_with_parent(parent: int) -> None:
    """End this worker when the scan ends, even by kill -9 (a worker holds 1-2 GB of model): on Linux the
    kernel kills it (prctl PR_SET_PDEATHSIG, tied to the scan thread that started it, which outlives the
    pool); elsewhere, and as a backstop, a thread notices that the parent changed."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the scan died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="viml-parent-watch", daemon=True).start()


def watch(
    catalog: Catalog,
    root: str | os.PathLike,
    analyzer_spec: str,
    jobs: int | None,
    interval: float,
    on_summary: Callable[[ScanSummary], None],
    progress: bool = True,
    bundle: str | os.PathLike | None = None,
    on_event: EventSink | None = None,
    ray: str | None = None,
    retry_failed: bool = False,
) -> None:
    """Rescan every `interval` seconds until interrupted (polling: works on network and removable drives,
    needs no extra dependency, and an unchanged rescan costs only stats). `retry_failed` applies to the
    first scan only: the later ones would decode every failing file again each time."""
    while True:
        on_summary(
            scan(
                catalog,
                root,
                analyzer_spec,
                jobs,
                progress=progress,
                bundle=bundle,
                on_event=on_event,
                ray=ray,
                retry_failed=retry_failed,
            )  # fmt: skip
        )
        retry_failed = False
        time.sleep(interval)
