"""Scanning a music folder into the catalog: discover → stat check → fingerprint → analyse → write.

- Incremental: a file whose size and mtime match the catalog costs one stat; nothing is read or decoded.
- Moved/renamed/duplicate files: the content hash finds the stored analysis, so no decode either.
- Resumable: each file is committed on its own (see store.py), so a killed scan loses at most the files
  in flight; the next scan skips everything already committed.
- Parallel: fingerprints and analyses run in worker processes; this process is the only writer.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from viml.catalog import analysis
from viml.catalog.analysis import FileFailure
from viml.catalog.store import Catalog, Fingerprint, path_key
from viml.engine.media.extensions import AUDIO_EXTENSIONS
from viml.engine.music.types import MusicSegments

from viml.errors import UserFacingError


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
            "audio_seconds": round(self.audio_seconds, 3),
            "seconds": round(self.seconds, 3),
            "skipped": dict(self.skipped),
            "failed": dict(Counter(f.kind for f in self.failures)),
            "failures": [
                {"path": path_key(f.path), "kind": f.kind, "message": f.message} for f in self.failures
            ],
        }


def discover(root: str, summary: ScanSummary) -> list[tuple[str, os.stat_result | None]]:
    """Audio files under root (following folder links once each), with their stat when it worked."""
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
) -> ScanSummary:
    started = time.perf_counter()
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise UserFacingError(f"{root} is not a folder")
    summary = ScanSummary(root=path_key(root))
    files = discover(root, summary)
    summary.seen = len(files)
    known = catalog.known_files(path_key(root))
    seen_keys = set()
    todo: list[str] = []
    for path, info in files:
        key = path_key(path)
        seen_keys.add(key)
        before = known.get(key)
        if info is not None and before is not None and (info.st_size, info.st_mtime_ns) == before[:2]:
            if before[2] is None:
                summary.unchanged += 1
            else:
                summary.still_failing += 1
            continue
        todo.append(path)  # fingerprint reports non-regular files without opening them
    gone = [key for key in known if key not in seen_keys]
    if gone:
        catalog.remove_paths(gone)
        summary.removed = len(gone)

    analyzer = analysis.load_analyzer(analyzer_spec) if todo else None
    summary.run = catalog.start_run(summary.root, analyzer.id if analyzer else "-")
    status = "interrupted"
    try:
        if todo:
            assert analyzer is not None
            _process(catalog, todo, analyzer, analyzer_spec, jobs, progress, reanalyze, summary, known)
        status = "done"
    finally:
        summary.seconds = time.perf_counter() - started
        catalog.finish_run(summary.run, status, summary.as_dict())
    return summary


def _process(
    catalog: Catalog,
    todo: list[str],
    analyzer: analysis.Analyzer,
    spec: str,
    jobs: int | None,
    progress: bool,
    reanalyze: bool,
    summary: ScanSummary,
    known: dict,
) -> None:
    from tqdm import tqdm

    jobs = max(1, min(jobs or analysis.usable_cores(), len(todo)))
    if jobs == 1:
        analysis._worker_analyzer = analyzer
        executor: cf.Executor = _InlineExecutor()
    else:
        executor = cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),  # no fork after model threads started
            initializer=analysis.worker_init,
            initargs=(spec, analysis.threads_per_worker(jobs)),
        )
    bar = tqdm(total=len(todo), unit="file", disable=not progress, desc="scan", dynamic_ncols=True)
    pending: dict[cf.Future, tuple[str, object]] = {}
    waiting: dict[str, list[Fingerprint]] = {}  # content hash being analysed -> other files with it
    queue = list(reversed(todo))
    window = 2 * jobs  # enough work in flight to keep every worker busy, little lost on a kill

    def done_with(count: int = 1) -> None:
        bar.update(count)

    def fail(failure: FileFailure) -> None:
        catalog.write_error(
            failure.path, failure.size, failure.mtime_ns, failure.kind, failure.message, summary.run
        )
        summary.failures.append(failure)
        done_with()

    try:
        while queue or pending:
            while queue and len(pending) < window:
                path = queue.pop()
                pending[executor.submit(analysis.worker_fingerprint, path)] = ("fingerprint", path)
            if isinstance(executor, _InlineExecutor):
                finished = {executor.run_next()}
            else:
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                stage, payload = pending.pop(future)
                result = future.result()
                if isinstance(result, FileFailure):
                    fail(result)
                    for twin in waiting.pop(getattr(payload, "hash", ""), []):
                        fail(FileFailure(twin.path, twin.size, twin.mtime_ns, result.kind, result.message))
                elif stage == "fingerprint":
                    _route(
                        catalog, result, analyzer.id, reanalyze, summary, known, waiting, pending, executor
                    )
                    if result.hash not in waiting:
                        done_with()
                else:
                    fp: Fingerprint = payload  # type: ignore[assignment]
                    music: MusicSegments = result
                    catalog.write_analysis(fp, analyzer.id, music, summary.run)
                    summary.analysed += 1
                    summary.audio_seconds += float(music.ends[-1])
                    done_with()
                    for twin in waiting.pop(fp.hash, []):
                        catalog.link_track(twin, summary.run)
                        summary.linked += 1
                        done_with()
                bar.set_postfix(audio=f"{summary.audio_seconds / 60:.0f} min", failed=len(summary.failures))
    finally:
        bar.close()
        executor.shutdown(wait=True, cancel_futures=True)


def _route(
    catalog: Catalog,
    fp: Fingerprint,
    analyzer_id: str,
    reanalyze: bool,
    summary: ScanSummary,
    known: dict,
    waiting: dict[str, list[Fingerprint]],
    pending: dict,
    executor: cf.Executor,
) -> None:
    """Decide what a fingerprinted file needs: nothing new, a track row, or an analysis."""
    if fp.hash in waiting:  # same content already being analysed in this scan
        waiting[fp.hash].append(fp)
        return
    stored = catalog.connection.execute("SELECT analyzer FROM contents WHERE hash = ?", (fp.hash,)).fetchone()
    if stored is not None and (stored[0] == analyzer_id or not reanalyze):
        previous = catalog.connection.execute(
            "SELECT hash FROM tracks WHERE path = ?", (path_key(fp.path),)
        ).fetchone()
        if previous is not None and previous[0] == fp.hash:
            catalog.touch_track(fp)
            summary.touched += 1
        else:
            catalog.link_track(fp, summary.run)
            summary.linked += 1
        return
    waiting[fp.hash] = []
    pending[executor.submit(analysis.worker_analyze, fp)] = ("analyse", fp)


class _InlineExecutor(cf.Executor):
    """The one-core path, with no process start-up cost: tasks run in this process one at a time, in the
    order they were submitted, when the scan asks for the next result. So each analysis is committed
    before the next one starts, and a kill loses at most the file being analysed."""

    def __init__(self) -> None:
        self._queue: collections.deque = collections.deque()

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: cf.Future = cf.Future()
        self._queue.append((future, fn, args, kwargs))
        return future

    def run_next(self) -> cf.Future:
        future, fn, args, kwargs = self._queue.popleft()
        future.set_result(fn(*args, **kwargs))
        return future


def watch(
    catalog: Catalog,
    root: str | os.PathLike,
    analyzer_spec: str,
    jobs: int | None,
    interval: float,
    on_summary,
    progress: bool = True,
) -> None:
    """Rescan every `interval` seconds until interrupted (polling: works on network and removable drives,
    needs no extra dependency, and an unchanged rescan costs only stats)."""
    while True:
        on_summary(scan(catalog, root, analyzer_spec, jobs, progress=progress))
        time.sleep(interval)
