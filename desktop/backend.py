"""The desktop's only door to the back end: the same catalog/engine API the CLI uses.

Everything here runs off the GUI thread (called from `workers.Task`s) and returns plain data for the
models. Nothing here ranks, decodes or tags by itself; it calls `viml.catalog` and `viml.engine`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from viml.catalog.store import Catalog
from viml.core.errors import UserFacingError
from viml.core.paths import special_file_problem  # noqa: F401  (the app's checks call it from here)
from viml.desktop.results import Suggestion
from viml.desktop.why import Why, row_tags
from viml.engine.tags import TAG_THRESHOLD, strongest

if TYPE_CHECKING:
    from viml.desktop.workers import Token
    from viml.engine.music.waveform import Waveform
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.search import Filters
    from viml.search import Suggestion as SearchSuggestion

# The `viml` command in this interpreter (viml.cli has no __main__ module).
VIML_COMMAND = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


class BackendMissingError(UserFacingError):
    """A back-end piece this action needs is not installed or not built yet."""


@dataclass(frozen=True)
class LibraryRow:
    path: str
    title: str
    duration: float | None
    tags: tuple[str, ...]
    state: str  # new | analysed | failed | missing
    reason: str = ""


def catalog_path(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    from viml.catalog.store import default_catalog_path

    return default_catalog_path()


@functools.lru_cache(maxsize=8)
def _vocabularies(names: tuple[str, ...]) -> int:
    """How many vocabularies 'VOCABULARY:tag' columns come from (asked once per track)."""
    return len({name.split(":", 1)[0] for name in names})


def top_tags(probabilities: np.ndarray, names: list[str], count: int = 3) -> list[str]:
    """The strongest tags of a track (mean over its segments; the tag module's threshold and merging).

    Only the columns that can be among the first `count` go through `strongest` (its Python loop over
    every name cost 0.45 ms a track when most tags pass the threshold: 4.5 s for a 10,000-track library):
    a name is in each vocabulary at most once, so the `count` x vocabularies strongest columns, ties at
    the cut included, hold the answer."""
    if probabilities.size == 0:
        return []
    mean = probabilities.mean(axis=0)
    columns = np.flatnonzero(mean >= TAG_THRESHOLD)
    if columns.size > count:
        keep = count * _vocabularies(tuple(names))
        if columns.size > keep:
            cut = np.partition(mean[columns], -keep)[-keep]
            columns = columns[mean[columns] >= cut]
    chosen = strongest(mean[columns], [names[column] for column in columns], top=count)
    return [tag.lower() for tag, _ in chosen]


def library_rows(
    catalog_file: Path,
    folders: list[str],
    check_missing: bool = True,
    reasons: dict[str, str] | None = None,
) -> list[LibraryRow]:
    """Tracks of the catalog (analysed / failed + reason) and files in the folders not yet scanned (new)."""
    return LibraryReader().read(catalog_file, folders, check_missing, reasons)


NOT_SCANNED = "not scanned yet: Scan analyses it"


class LibraryReader:
    """Reads the library for the track list, remembering each content's top tags, so a refresh during a
    scan decodes tag blobs only for the contents committed since the last read (one reader per window;
    one read at a time)."""

    def __init__(self) -> None:
        self._catalog: Path | None = None
        self._tags: dict[str, tuple[str, ...]] = {}  # content hash -> top tags

    def _top_tags(self, catalog: Catalog, hashes: set[str], names: list[str]) -> None:
        unknown = hashes - self._tags.keys()
        found = catalog.content_tags(unknown) if unknown else {}
        for content_hash in unknown:
            matrix = found.get(content_hash)
            self._tags[content_hash] = tuple(top_tags(matrix, names)) if matrix is not None else ()

    def read(
        self,
        catalog_file: Path,
        folders: list[str],
        check_missing: bool = True,
        reasons: dict[str, str] | None = None,
    ) -> list[LibraryRow]:
        """`reasons`: music folder -> why its unscanned files are not analysed yet (a scan that could not
        run, one still queued); files of other folders say NOT_SCANNED."""
        if catalog_file != self._catalog:  # tag names belong to a catalog
            self._catalog, self._tags = catalog_file, {}
        rows: list[LibraryRow] = []
        known: set[str] = set()
        if catalog_file.exists():
            with Catalog(catalog_file) as catalog:
                names = catalog.tag_names()
                tracks = catalog.tracks()
                self._top_tags(catalog, {track.hash for track in tracks}, names)
                for track in tracks:
                    label = (
                        " – ".join(part for part in (track.artist, track.title) if part)
                        or Path(track.path).name
                    )
                    state = "missing" if check_missing and not os.path.exists(track.path) else "analysed"
                    reason = "file vanished since the scan" if state == "missing" else ""
                    rows.append(
                        LibraryRow(track.path, label, track.duration, self._tags[track.hash], state, reason)
                    )
                    known.add(track.path)
                for error in catalog.errors():  # the scan's `errors` table: each failed file and why
                    reason = f"{error['kind']}: {error['message']}"
                    rows.append(
                        LibraryRow(error["path"], Path(error["path"]).name, None, (), "failed", reason)
                    )
                    known.add(error["path"])
        if folders:
            from viml.catalog.scan import ScanSummary, discover
            from viml.catalog.store import path_key

            for folder in folders:
                if not os.path.isdir(folder):
                    continue
                reason = (reasons or {}).get(folder, NOT_SCANNED)
                for path, _info in discover(os.path.abspath(folder), ScanSummary(root=folder)):
                    if path_key(path) not in known:
                        rows.append(LibraryRow(path_key(path), Path(path).name, None, (), "new", reason))
                        known.add(path_key(path))
        return rows


def remove_folder_tracks(catalog_file: Path, folder: str, remaining: list[str]) -> int:
    """Forget a music folder: its tracks and failures leave the catalog in one transaction, so they stop
    appearing in the library and in every search (the desktop's, the CLI's, the service's); files also
    under a folder in `remaining` stay. The analysed audio (contents, segments) is kept: adding the folder
    again links its files without decoding them. Returns how many files were forgotten."""
    if not catalog_file.exists():
        return 0
    from viml.catalog.store import path_key

    keep = [path_key(os.path.abspath(other)).rstrip("/") for other in remaining]

    def kept(path: str) -> bool:
        return any(path == other or path.startswith(other + "/") for other in keep)

    with Catalog(catalog_file, read_only=False) as catalog:
        gone = [path for path in catalog.known_files(path_key(os.path.abspath(folder))) if not kept(path)]
        if gone:
            catalog.remove_paths(gone)
    return len(gone)


class ScanProcess:
    """`viml scan` in a child process: the GUI keeps its interpreter (and GIL) to itself, pausing is
    SIGSTOP/SIGCONT of the child's process group, and cancelling is safe at any moment because a scan
    commits file by file (the next scan resumes)."""

    def __init__(
        self,
        folder: str,
        catalog_file: Path,
        analyzer: str | None = None,
        jobs: int | None = None,
        bundle: str | None = None,
        retry_failed: bool = False,
    ):
        self.folder = os.path.abspath(folder)
        self.catalog_file = catalog_file
        command = [
            *VIML_COMMAND,
            "scan",
            self.folder,
            "--catalog",
            str(catalog_file),
            "--events",
            "--quiet",
        ]
        if analyzer:
            command += ["--analyzer", analyzer]
        if bundle is None:  # the bundle the app ranks with (desktop setting), else the CLI's default
            from viml.desktop.settings import AppSettings

            bundle = AppSettings().bundle
        if bundle:
            command += ["--bundle", bundle]
        if jobs:
            command += ["--jobs", str(jobs)]
        if retry_failed:  # files that failed before are otherwise skipped until they change
            command.append("--retry-failed")
        self.command = command
        self.process: subprocess.Popen | None = None
        self.outcomes: dict[str, int] = {}  # file events seen: outcome -> count (a check on the summary)

    def run(self, progress: Callable[[int, int, str], None], should_stop: Callable[[], bool]) -> dict:
        """Blocks until the scan ends; returns its summary. `progress(done, total, message)` follows the
        child's event stream (catalog/scan.py EVENTS): one event per committed file."""
        self.catalog_file.parent.mkdir(parents=True, exist_ok=True)
        # stderr to a file: a pipe nobody drains while events are read could fill and stall the child.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True
            )
            try:
                summary, total = self._follow(progress, should_stop)
                self.process.wait()
            finally:
                if self.process.poll() is None:
                    self.cancel()
            errors.seek(0)
            stderr = errors.read()
        if self.process.returncode != 0:
            if should_stop():
                return {"cancelled": True}
            message = (stderr.strip().splitlines() or [f"exit status {self.process.returncode}"])[-1]
            raise UserFacingError(f"scan of {self.folder} failed: {message.removeprefix('viml: error: ')}")
        progress(total, total, "scan finished")
        return {**summary, "outcomes": dict(self.outcomes)}

    def _follow(
        self, progress: Callable[[int, int, str], None], should_stop: Callable[[], bool]
    ) -> tuple[dict, int]:
        """Read the child's events until it ends (or cancel it when asked); returns (summary, total)."""
        assert self.process is not None
        events: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=_read_events, args=(self.process.stdout, events), daemon=True).start()
        summary: dict = {}
        total = 0
        while True:
            if should_stop():
                self.cancel()
                return summary, total
            try:
                event = events.get(timeout=0.25)
            except queue.Empty:
                continue
            if event is None:  # the child closed its output: it has ended
                return summary, total
            if event.get("event") == "started":
                total = int(event.get("to_do", 0))
                progress(0, total, f"scanning {self.folder}")
            elif event.get("event") == "file":
                total = int(event.get("to_do", total))
                self.outcomes[event["outcome"]] = self.outcomes.get(event["outcome"], 0) + 1
                progress(int(event["done"]), total, f"{event['outcome']}: {Path(event['path']).name}")
            elif event.get("event") == "summary":
                summary = event

    def _signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def cancel(self) -> None:
        self._signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)


def _read_events(stream: IO[str] | None, events: queue.Queue[dict | None]) -> None:
    """JSON lines of the child scan into `events`, then None at its end (other lines are ignored)."""
    if stream is not None:
        for line in stream:
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.put(json.loads(line))
    events.put(None)


def read_music(path: str, start: float, end: float, sample_rate: int) -> np.ndarray:
    """Decoded mono float32 music for auditioning (the engine's decoder)."""
    if not os.path.exists(path):
        raise UserFacingError(f"{path}: the file has vanished since it was scanned; rescan the folder")
    try:
        from viml.engine.media import read_audio
    except ImportError as error:
        raise BackendMissingError(f"audio decoding is not available: {error}") from error
    return read_audio(path, sample_rate, start=start, end=end)


def read_excerpt(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """A rendered excerpt (desktop/excerpts.py) as float32 [samples, channels] at the audition's rate:
    resampled here, off the GUI thread, rather than in `AuditionEngine.load`."""
    from viml.engine.music.fit import read_source_audio

    audio, rate = read_source_audio(path)
    if rate != sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.asarray(audio, np.float32)


# -- suggestions ------------------------------------------------------------------------------------
# onnxruntime's default intra-op pool has one thread per core, and its idle threads spin: on a 2-core
# machine a query then leaves the GUI thread no core (measured: GUI stalls of 110-140 ms while typing
# during a scan, 60 ms with one thread). The app keeps its models to half the cores, at least one.
DESKTOP_MODEL_THREADS = max(1, (os.cpu_count() or 2) // 2)


def open_runtime(bundle: str | None) -> RuntimeBundle:
    """The bundle the app ranks with: the CLI's loader, with fewer model threads, on the Settings' "Run
    models on" as it is now (a changed choice opens the bundle again with new sessions, no restart)."""
    from viml.core.settings import get_setting
    from viml.engine.runtime import open_bundle as open_runtime_bundle

    provider = str(get_setting("provider", "auto"))
    return open_runtime_bundle(bundle, provider=provider, threads=DESKTOP_MODEL_THREADS)


@dataclass(frozen=True)
class BundleInfo:
    name: str
    kind: str  # the manifest's kind: trained | zero-shot | demo
    reads_pictures: bool

    @property
    def label(self) -> str:
        return f"Bundle: {self.name} ({self.kind}{'' if self.reads_pictures else ', prompts only'})"

    @property
    def description(self) -> str:
        from viml.engine.bundles.manifest import KIND_WORDS

        return KIND_WORDS.get(self.kind, self.kind)


def open_bundle(bundle: str | None, warm: bool = True) -> BundleInfo:
    """Open the bundle the app ranks with (kept open for every later query) and say what kind it is.

    Called once at start-up off the GUI thread, so the first query does not pay for opening it; `warm`
    also creates the prompt encoder's session by encoding one word (onnxruntime releases the GIL)."""
    runtime = open_runtime(bundle)
    if warm:
        runtime.prompt_encoder.encode_texts(["music"])
        # The search modules import ~300 ms of Python (prompt terms, the tag table): here, not during
        # the first query, where that import would hold the GIL while the user types.
        import viml.search.searcher  # noqa: F401
    return BundleInfo(runtime.name, runtime.kind, runtime.reads_pictures)


def suggest(
    catalog_file: Path,
    bundle: str | None,
    video: str | None,
    in_point: float,
    out_point: float,
    prompt: str,
    influence: float,
    token: Token | None = None,
    top: int = 20,
    filters: Filters | None = None,
    like: str | None = None,
) -> list[Suggestion]:
    """Ranked `results.Suggestion`s for the clip and/or prompt: `viml suggest`'s search, same request
    (`like`: a reference PATH@OFFSET the prompt's words move, search/like.py)."""
    from viml.search import Filters, Searcher, SuggestRequest

    if not catalog_file.exists():
        raise UserFacingError("No catalog yet: add a music folder and scan it first.")
    if video is not None and not os.path.exists(video):
        raise UserFacingError(f"{video}: the clip has vanished; open it again")
    request = SuggestRequest(
        video=video, start=in_point if video else 0.0, end=out_point if video else None,
        prompt=prompt or None, influence=influence, top=top, filters=filters or Filters(), like=like,
    )  # fmt: skip
    runtime = open_runtime(bundle)

    def checkpoint() -> None:
        # A newer query cancels this one between tracks and steps (every track is committed, nothing is
        # lost); the brief pause hands the GIL to the GUI thread, which a long run of Python-heavy
        # embedding would otherwise starve.
        if token is not None:
            token.checkpoint()
        time.sleep(0.001)

    checkpoint()
    with Catalog(catalog_file) as catalog:
        found = Searcher(catalog, runtime).suggest(request, checkpoint=checkpoint).suggestions
        waveforms = stored_waveforms(catalog, [item.path for item in found])
    from viml.desktop.waveform import prepare

    clip = request.clip_seconds
    # The cells are drawn here, on the query's worker thread, not when the GUI shows them.
    return prepare([suggestion_row(item, clip, waveforms.get(item.path)) for item in found])


def stored_waveforms(catalog: Catalog, paths: list[str]) -> dict[str, Waveform]:
    """path -> the waveform the scan stored for its content (read here, off the GUI thread; absent for a
    track the scan has not measured yet)."""
    hashes = {path: track.hash for path in paths if (track := catalog.track(path)) is not None}
    stored = catalog.waveforms(hashes.values())
    return {path: stored[content] for path, content in hashes.items() if content in stored}


def suggestion_row(
    item: SearchSuggestion, clip_length: float | None = None, waveform: Waveform | None = None
) -> Suggestion:
    """The results list's row for one search suggestion (with the clip's in–out length and the track's
    stored waveform for its cell)."""
    why = Why.of(item)
    tags, weak = row_tags(why)
    return Suggestion(
        path=item.path,
        title=item.title or Path(item.path).name,  # the artist has a column of its own
        score=item.score,
        offset=item.start,
        length=item.end - item.start,
        duration=item.duration or (item.start + item.segment_seconds * max(len(item.curve), 1)),
        # Why this track: its best part's tags (else the track's strongest, greyed), then the library's
        # words that matched (field in brackets).
        tags=tags + tuple(f"{w['word']} ({w['field']})" for w in item.matched_words[:2]),
        weak_tags=weak,
        curve=np.asarray(item.curve, np.float32),
        curve_step=item.segment_seconds,
        rank=item.rank,
        artist=item.artist or "",
        bpm=item.bpm,
        measured_bpm=item.measured_tempo,
        key=item.key or "",
        clip_length=clip_length,
        waveform=waveform,
        fine_curve=np.asarray(item.fine_curve, np.float64).reshape(-1, 2),
        downbeats=tuple(item.downbeats),
        sections=tuple(item.sections),
        why=why,
    )


# Writes a timeline in a child process: OpenTimelineIO's objects take a C++ lock in their destructors,
# so a garbage collection on the GUI thread while a worker thread builds a timeline deadlocks the app
# (seen: gc on the GUI thread vs `install_external_keepalive_monitor` in the worker).
_EXPORT_CHILD = (
    "import json, sys\n"
    "from viml.core.errors import UserFacingError\n"
    "from viml.desktop.backend import write_timeline_file\n"
    "try:\n"
    "    write_timeline_file(*json.loads(sys.argv[1]))\n"
    "except UserFacingError as error:\n"
    "    print(str(error).replace('\\n', ' '), file=sys.stderr)\n"
    "    sys.exit(1)\n"
)


def export_timeline(
    path: str, video: str, in_point: float, out_point: float, music: str, offset: float
) -> str:
    """`write_timeline_file` in a child process (see _EXPORT_CHILD); its one-line error as ours."""
    arguments = json.dumps([path, video, in_point, out_point, music, offset])
    done = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHILD, arguments], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise UserFacingError(lines[-1] if lines else f"timeline export failed (exit {done.returncode})")
    return path


def write_timeline_file(
    path: str, video: str, in_point: float, out_point: float, music: str, offset: float
) -> str:
    """A timeline (format from the extension) with the clip on V1 and the music from its offset on A1."""
    from viml.catalog.otio_export import MusicPlacement, build_timeline, write_timeline

    duration = None
    try:
        from viml.engine.media import probe

        duration = probe(music).duration
    except Exception:  # duration only trims the placement; the export still works without it
        duration = None
    timeline = build_timeline(
        [MusicPlacement(path=music, start=offset, duration=duration)],
        clip_seconds=out_point - in_point,
        video=video,
        video_in=in_point,
    )
    write_timeline(timeline, path)
    return path


def _read_timeline(path: str):
    """An OTIO/EDL/XML timeline as an OpenTimelineIO object, or a clear error."""
    try:
        import opentimelineio as otio
    except ImportError as error:
        raise BackendMissingError(f"opening timelines needs opentimelineio: {error}") from error
    try:
        return otio.adapters.read_from_file(path)
    except Exception as error:
        raise UserFacingError(f"{path}: cannot read this timeline ({error})") from error


def timeline_music(path: str) -> list[str]:
    """The local files on a timeline's audio tracks: the music already in this edit ("Not used in this
    edit" leaves it out)."""
    timeline = _read_timeline(path)  # held: its tracks go with it
    found: dict[str, None] = {}
    for track in timeline.tracks:
        if track.kind != "Audio":
            continue
        for clip in track.find_clips():
            url = getattr(clip.media_reference, "target_url", None)
            if url:
                found[os.path.abspath(file_url_to_path(url))] = None
    return list(found)


def timeline_clips(path: str) -> list[tuple[str, str, float, float]]:
    """(name, media path, in, out) of every video clip with a local file in an OTIO/EDL timeline."""
    timeline = _read_timeline(path)
    clips = []
    for clip in timeline.find_clips():
        reference = clip.media_reference
        url = getattr(reference, "target_url", None)
        if not url:
            continue
        media = file_url_to_path(url)
        source = clip.source_range or clip.available_range()
        start = source.start_time.to_seconds()
        clips.append((clip.name or Path(media).name, media, start, start + source.duration.to_seconds()))
    return clips


def file_url_to_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url
