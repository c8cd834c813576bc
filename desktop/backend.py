"""The desktop's only door to the back end: the same catalog/engine API the CLI uses.

Everything here runs off the GUI thread (called from `workers.Task`s) and returns plain data for the
models. Nothing here ranks, decodes or tags by itself; it calls `viml.catalog` and `viml.engine`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from viml.errors import UserFacingError

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


def top_tags(
    probabilities: np.ndarray, names: list[str], count: int = 3, threshold: float = 0.2
) -> list[str]:
    """The strongest tags of a track (mean over its segments), without vocabulary prefixes or repeats."""
    if probabilities.size == 0:
        return []
    mean = probabilities.mean(axis=0)
    tags: list[str] = []
    for column in np.argsort(-mean):
        if mean[column] < threshold or len(tags) >= count:
            break
        tag = names[column].split(":", 1)[-1].lower()
        if tag not in tags:
            tags.append(tag)
    return tags


def library_rows(catalog_file: Path, folders: list[str], check_missing: bool = True) -> list[LibraryRow]:
    """Tracks of the catalog (analysed / failed + reason) and files in the folders not yet scanned (new)."""
    return LibraryReader().read(catalog_file, folders, check_missing)


class LibraryReader:
    """Reads the library for the track list, remembering each content's top tags, so a refresh during a
    scan decodes tag blobs only for the contents committed since the last read (one reader per window;
    one read at a time)."""

    def __init__(self) -> None:
        self._catalog: Path | None = None
        self._tags: dict[str, tuple[str, ...]] = {}  # content hash -> top tags

    def _top_tags(self, connection, hashes: set[str], names: list[str]) -> None:
        unknown = sorted(hashes - self._tags.keys())
        for first in range(0, len(unknown), 500):  # SQLite's bound-parameter limit
            chunk = unknown[first : first + 500]
            blobs: dict[str, list[bytes]] = {content_hash: [] for content_hash in chunk}
            marks = ",".join("?" * len(chunk))
            for content_hash, blob in connection.execute(
                f"SELECT hash, tags FROM segments WHERE hash IN ({marks}) ORDER BY hash, idx", chunk
            ):
                blobs[content_hash].append(blob)
            for content_hash, parts in blobs.items():
                matrix = np.frombuffer(b"".join(parts), np.float32).reshape(len(parts), -1) if parts else None
                fits = matrix is not None and matrix.shape[1] == len(names)
                self._tags[content_hash] = tuple(top_tags(matrix, names)) if fits else ()

    def read(self, catalog_file: Path, folders: list[str], check_missing: bool = True) -> list[LibraryRow]:
        if catalog_file != self._catalog:  # tag names belong to a catalog
            self._catalog, self._tags = catalog_file, {}
        rows: list[LibraryRow] = []
        known: set[str] = set()
        if catalog_file.exists():
            from viml.catalog.store import Catalog

            with Catalog(catalog_file) as catalog:
                names = catalog.tag_names()
                tracks = catalog.connection.execute(
                    "SELECT path, hash, title, artist, duration FROM tracks ORDER BY path"
                ).fetchall()
                self._top_tags(catalog.connection, {track[1] for track in tracks}, names)
                for path, content_hash, title, artist, duration in tracks:
                    label = " – ".join(part for part in (artist, title) if part) or Path(path).name
                    state = "missing" if check_missing and not os.path.exists(path) else "analysed"
                    reason = "file vanished since the scan" if state == "missing" else ""
                    rows.append(LibraryRow(path, label, duration, self._tags[content_hash], state, reason))
                    known.add(path)
                for error in catalog.errors():
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
                for path, _info in discover(os.path.abspath(folder), ScanSummary(root=folder)):
                    if path_key(path) not in known:
                        rows.append(LibraryRow(path_key(path), Path(path).name, None, (), "new"))
                        known.add(path_key(path))
        return rows


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
    ):
        self.folder = os.path.abspath(folder)
        self.catalog_file = catalog_file
        command = [
            *VIML_COMMAND,
            "scan",
            self.folder,
            "--catalog",
            str(catalog_file),
            "--json",
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
        self.command = command
        self.process: subprocess.Popen | None = None

    def run(self, progress: Callable[[int, int, str], None], should_stop: Callable[[], bool]) -> dict:
        """Blocks until the scan ends; returns its JSON summary. `progress(done, total, message)`."""
        from viml.catalog.scan import ScanSummary, discover

        total = len(discover(self.folder, ScanSummary(root=self.folder)))
        self.catalog_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            while self.process.poll() is None:
                if should_stop():
                    self.cancel()
                    break
                progress(self._done_count(), total, f"scanning {self.folder}")
                time.sleep(0.25)
            stdout, stderr = self.process.communicate()
        finally:
            if self.process.poll() is None:
                self.cancel()
        if self.process.returncode != 0:
            if should_stop():
                return {"cancelled": True}
            message = (stderr.strip().splitlines() or [f"exit status {self.process.returncode}"])[-1]
            raise UserFacingError(f"scan of {self.folder} failed: {message}")
        progress(total, total, "scan finished")
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}

    def _done_count(self) -> int:
        if not self.catalog_file.exists():
            return 0
        import sqlite3

        from viml.catalog.store import _like_prefix, path_key

        try:
            connection = sqlite3.connect(f"file:{self.catalog_file}?mode=ro", uri=True, timeout=1.0)
            like = _like_prefix(path_key(self.folder))
            done = sum(
                connection.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE path LIKE ? ESCAPE '\\'", (like,)
                ).fetchone()[0]
                for table in ("tracks", "errors")
            )
            connection.close()
            return done
        except sqlite3.Error:  # the scan is creating the schema right now
            return 0

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


def read_music(path: str, start: float, end: float, sample_rate: int) -> np.ndarray:
    """Decoded mono float32 music for auditioning (the engine's decoder)."""
    if not os.path.exists(path):
        raise UserFacingError(f"{path}: the file has vanished since it was scanned; rescan the folder")
    try:
        from viml.engine.media import read_audio
    except ImportError as error:
        raise BackendMissingError(f"audio decoding is not available: {error}") from error
    return read_audio(path, sample_rate, start=start, end=end)


# -- suggestions ------------------------------------------------------------------------------------
# onnxruntime's default intra-op pool has one thread per core, and its idle threads spin: on a 2-core
# machine a query then leaves the GUI thread no core (measured: GUI stalls of 110-140 ms while typing
# during a scan, 60 ms with one thread). The app keeps its models to half the cores, at least one.
DESKTOP_MODEL_THREADS = max(1, (os.cpu_count() or 2) // 2)


def open_runtime(bundle: str | None):  # noqa: ANN201 (RuntimeBundle, RetrievalSpace, QueryEncoder)
    """The bundle, its retrieval space and query encoder: the CLI's loader, with fewer model threads."""
    from viml.engine.runtime.retrieval import open_retrieval

    return open_retrieval(bundle, threads=DESKTOP_MODEL_THREADS)


def retrieval(bundle: str | None):  # noqa: ANN201 (RetrievalSpace, QueryEncoder)
    """The bundle's retrieval space and query encoder (a new prompt on the same clip only encodes the
    prompt)."""
    _runtime, space, encoder = open_runtime(bundle)
    return space, encoder


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
        from viml.cli.bundle import KIND_WORDS  # the CLI's wording for `viml bundle list`

        return KIND_WORDS.get(self.kind, self.kind)


def open_bundle(bundle: str | None, warm: bool = True) -> BundleInfo:
    """Open the bundle the app ranks with (kept open for every later query) and say what kind it is.

    Called once at start-up off the GUI thread, so the first query does not pay for opening it; `warm`
    also creates the prompt encoder's session by encoding one word (onnxruntime releases the GIL)."""
    runtime, _space, _encoder = open_runtime(bundle)
    if warm:
        runtime.prompt_encoder.encode_texts(["music"])
        # The search modules import ~300 ms of Python (prompt terms, the LLM client): here, not during
        # the first query, where that import would hold the GIL while the user types.
        import viml.catalog.search  # noqa: F401
    return BundleInfo(runtime.name, runtime.kind, runtime.reads_pictures)


def suggest(
    catalog_file: Path,
    bundle: str | None,
    video: str | None,
    in_point: float,
    out_point: float,
    prompt: str,
    influence: float,
    token=None,
    top: int = 20,
) -> list:
    """Ranked `results.Suggestion`s for the clip and/or prompt, from the catalog's ranking."""
    from viml.catalog.search import suggest as catalog_suggest
    from viml.catalog.store import Catalog
    from viml.desktop.results import Suggestion

    if not catalog_file.exists():
        raise UserFacingError("No catalog yet: add a music folder and scan it first.")
    if video is not None and not os.path.exists(video):
        raise UserFacingError(f"{video}: the clip has vanished; open it again")
    space, encoder = retrieval(bundle)
    if token is not None:
        token.checkpoint()
    with Catalog(catalog_file) as catalog:
        embed_missing(catalog, space, token)  # tracks scanned under another bundle, or still scanning
        if token is not None:
            token.checkpoint()
        query = encoder.encode_query(
            video,
            in_point if video else None,
            out_point if video else None,
            prompt or None,
            influence,
        )
        if token is not None:
            token.checkpoint()  # a newer query may have arrived while the clip was being encoded
        clip_seconds = out_point - in_point if video else None
        found = catalog_suggest(
            catalog, space.id, query, clip_seconds=clip_seconds, prompt=prompt or None, top=top
        )
    rows = []
    for item in found:
        title = " – ".join(part for part in (item.artist, item.title) if part) or Path(item.path).name
        rows.append(
            Suggestion(
                path=item.path,
                title=title,
                score=item.score,
                offset=item.start,
                length=item.end - item.start,
                duration=item.duration or (item.start + item.segment_seconds * max(len(item.curve), 1)),
                tags=tuple(tag["tag"] for tag in item.matched_tags[:4]),
                curve=np.asarray(item.curve, np.float32),
                curve_step=item.segment_seconds,
            )
        )
    return rows


def embed_missing(catalog, space, token=None) -> int:  # noqa: ANN001 (Catalog, RetrievalSpace, Token)
    """`catalog.retrieval.ensure_space` with a checkpoint between tracks: a newer query cancels it mid-way
    (each track is committed, nothing is lost), and the brief pause hands the GIL to the GUI thread,
    which a long run of Python-heavy embedding would otherwise starve."""
    from viml.catalog.retrieval import ensure_space

    def checkpoint() -> None:
        if token is not None:
            token.checkpoint()
        time.sleep(0.001)

    return ensure_space(catalog, space, checkpoint=checkpoint)


def export_timeline(
    path: str, video: str, in_point: float, out_point: float, music: str, offset: float
) -> str:
    """An OpenTimelineIO file with the clip on V1 and the music from its best offset on A1."""
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


def timeline_clips(path: str) -> list[tuple[str, str, float, float]]:
    """(name, media path, in, out) of every video clip with a local file in an OTIO/EDL timeline."""
    try:
        import opentimelineio as otio
    except ImportError as error:
        raise BackendMissingError(f"opening timelines needs opentimelineio: {error}") from error
    try:
        timeline = otio.adapters.read_from_file(path)
    except Exception as error:
        raise UserFacingError(f"{path}: cannot read this timeline ({error})") from error
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
