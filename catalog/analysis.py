"""Per-file work of a scan, as pure functions of (file, analyzer) so any pool or cluster can run them.

Two stages per file: `fingerprint` (stat, content hash, file tags; no decode) and `analyze` (decode and
music model). The scanner runs both in worker processes and writes their results from one process.
Failures come back as `FileFailure` values, never as exceptions, so one bad file cannot stop a scan.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from viml.catalog.store import FileTags, Fingerprint
from viml.core.errors import MediaError, UserFacingError
from viml.engine.music.types import MusicSegments

if TYPE_CHECKING:
    from viml.engine.bundles.spec import AnalysisSpec
    from viml.engine.music.rhythm.analysis import RhythmAnalyzer
    from viml.engine.music.rhythm.types import Rhythm
    from viml.engine.music.runtime import MusicModel
    from viml.engine.music.waveform import Waveform
    from viml.engine.runtime.bundle import RuntimeBundle

DEFAULT_ANALYZER = "viml.catalog.analysis:load_music_model"
_HASH_CHUNK = 1 << 20


@runtime_checkable
class Analyzer(Protocol):
    """A music model as the catalog sees it: a stable id (weights hash) and per-file analysis."""

    id: str

    def analyze_file(self, path: str) -> MusicSegments: ...


@dataclass
class FileFailure:
    path: str
    size: int | None
    mtime_ns: int | None
    kind: str  # unreadable | not-a-file | empty | undecodable | silent | too-short | changed | analysis-error | crashed
    message: str


def load_analyzer(spec: str = DEFAULT_ANALYZER) -> Analyzer:
    """Build an analyzer from 'module:callable' (the callable returns the analyzer, e.g. a loader)."""
    module_name, _, attribute = spec.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise UserFacingError(f"music model {spec!r} is not available: {error}") from error
    analyzer = target()  # type: ignore[operator]
    if not isinstance(analyzer, Analyzer):
        raise UserFacingError(f"{spec!r} did not give a music analyzer (needs .id and .analyze_file)")
    return analyzer


class MusicModelAnalyzer:
    """The product's music model (musicnn taggers on onnxruntime) under an analysis spec; its id is the
    spec's `analysis_id` (the model's file hashes + segment rules), so the catalog knows, per content,
    which spec analysed it. With a rhythm analyzer (the converted BeatNet), the same decode also measures
    beats, sections and loudness (`rhythm_id` names that analysis)."""

    waveforms = True  # every analysis also builds the track's waveform from its decode

    def __init__(self, model: MusicModel, spec: AnalysisSpec, rhythm: RhythmAnalyzer | None = None) -> None:
        self.model = model
        self.spec = spec
        self.id = spec.analysis_id
        self.rhythm = rhythm
        self.rhythm_id = rhythm.id if rhythm else None

    def analyze_file(self, path: str) -> MusicSegments:
        from viml.engine.music.rhythm.analysis import RHYTHM_SAMPLE_RATE
        from viml.engine.music.waveform import WaveformBuilder

        spec = self.spec
        stream = self.rhythm.stream() if self.rhythm else None
        # The same decode also builds the waveform (at the rhythm's rate, with or without the rhythm, so a
        # waveform is the same whichever analysis ran alongside).
        waveform = WaveformBuilder(RHYTHM_SAMPLE_RATE)
        consumers = [waveform.push] + ([stream.push] if stream else [])

        def push(block) -> None:
            for consumer in consumers:
                consumer(block)

        music = self.model.analyze_file(
            path,
            segment_seconds=spec.segment_seconds,
            min_fraction=spec.min_segment_fraction,
            refuse_silence=True,
            also=(RHYTHM_SAMPLE_RATE, push),
        )
        music = replace(music, waveform=waveform.finish())
        if stream is None:
            return music
        rhythm = stream.finish(music.embeddings, music.starts)
        return replace(music, rhythm=rhythm, rhythm_id=self.rhythm_id)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Model threads for each of `workers` processes sharing the cores: one worker gets them all; N workers
    on N cores get one each (more threads than cores make the processes fight over them)."""
    return max(1, (cores or usable_cores()) // max(1, workers))


# The bundle whose analysis spec a scan follows (a folder); set by the scan for its worker processes.
BUNDLE_ENV = "VIML_ANALYSIS_BUNDLE"


def analysis_spec(bundle_folder: str | None = None) -> AnalysisSpec:
    """The spec a scan analyses with: the bundle's own (`bundle_folder`, else the scan's bundle), or, with
    no bundle, the converted musicnn's with the default rules."""
    folder = bundle_folder or os.environ.get(BUNDLE_ENV)
    return _bundle(folder).analysis if folder else converted_spec()


def converted_spec() -> AnalysisSpec:
    """The converted musicnn (`viml convert-musicnn`) with the default segment rules."""
    from viml.engine.bundles.manifest import hash_files
    from viml.engine.bundles.spec import AnalysisSpec, music_model_files
    from viml.engine.music.manifest import model_folder

    return AnalysisSpec(music_model_files=music_model_files(hash_files(model_folder())))


# "0" scans without the rhythm analysis (beats, sections, loudness) even when BeatNet is converted.
RHYTHM_ENV = "VIML_RHYTHM"


def load_rhythm(threads: int | None = None) -> RhythmAnalyzer | None:
    """The rhythm analysis the scan adds to the music model's: None when switched off (RHYTHM_ENV) or when
    BeatNet is not converted (a warning says how to get it; the rest of the scan does not need it)."""
    from viml.engine.music.rhythm.analysis import RhythmAnalyzer

    return _unless_off_or_missing(lambda: RhythmAnalyzer.load(threads=threads))


def expected_rhythm_id(spec: str = DEFAULT_ANALYZER) -> str | None:
    """The rhythm analysis id the scan's analyzer will write (None: it measures no rhythm), read from
    the converted files: the driver opens no model session for it."""
    from viml.engine.music.rhythm.analysis import RhythmAnalyzer

    if spec != DEFAULT_ANALYZER:
        return getattr(load_analyzer(spec), "rhythm_id", None)
    return _unless_off_or_missing(RhythmAnalyzer.installed_id)


def expected_waveforms(spec: str = DEFAULT_ANALYZER) -> bool:
    """Whether the scan's analyzer builds waveforms (`waveforms = True`; the product's own does): only
    then are catalogued tracks without one measured again, so a scan with another analyzer stays put."""
    return spec == DEFAULT_ANALYZER or bool(getattr(load_analyzer(spec), "waveforms", False))


T = TypeVar("T")


def _unless_off_or_missing(make: Callable[[], T]) -> T | None:
    if os.environ.get(RHYTHM_ENV, "1") == "0":
        return None
    try:
        return make()
    except UserFacingError as error:
        _warn_once(f"no beats, sections or loudness this scan: {error}")
        return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    import logging

    if message not in _warned:
        _warned.add(message)
        logging.getLogger(__name__).warning(message)


def load_music_model() -> MusicModelAnalyzer:
    from viml.engine.music.runtime import MusicModel

    # VIML_ANALYZER_THREADS: set by the scan for its workers (cores // workers) or by the user; a process
    # analysing on its own uses every core.
    threads = int(os.environ.get("VIML_ANALYZER_THREADS", "0")) or usable_cores()
    folder = os.environ.get(BUNDLE_ENV)
    if folder:  # the bundle's own music model, verified with the rest of the bundle
        return bundle_analyzer(_bundle(folder, threads), threads)
    return MusicModelAnalyzer(MusicModel.load(threads=threads), converted_spec(), load_rhythm(threads))


def bundle_analyzer(bundle: RuntimeBundle, threads: int | None = None) -> MusicModelAnalyzer:
    """The analysis an opened bundle's catalog was scanned with (also what a search runs on a file that
    is not catalogued, search/like.py)."""
    from viml.engine.music.runtime import MusicModel

    rhythm = load_rhythm(threads)
    if "music_model" in bundle.manifest:
        return MusicModelAnalyzer(bundle.music_model(), bundle.analysis, rhythm)
    # A bundle built without its music model names the converted one's files in its spec: they must
    # be the files that are really there, or the analysis would carry another model's id.
    if converted_spec().music_model_files != bundle.analysis.music_model_files:
        raise UserFacingError(
            f"bundle {bundle.name!r} was built for another conversion of the music model than the one "
            "installed; rebuild the bundle, or scan with a bundle that includes its music model"
        )
    return MusicModelAnalyzer(MusicModel.load(threads=threads), bundle.analysis, rhythm)


def expected_analyzer_id(spec: str = DEFAULT_ANALYZER) -> str:
    """The id the analyzer `spec` will write, without loading a model when it is the product's own."""
    return analysis_spec().analysis_id if spec == DEFAULT_ANALYZER else load_analyzer(spec).id


def _bundle(folder: str, threads: int | None = None) -> RuntimeBundle:
    from viml.engine.runtime import open_bundle

    return open_bundle(folder, threads=threads)


def fingerprint(path: str) -> Fingerprint | FileFailure:
    try:
        info = os.stat(path)
    except OSError as error:
        return FileFailure(path, None, None, "unreadable", _os_message(error))
    if not stat.S_ISREG(info.st_mode):
        return FileFailure(path, None, None, "not-a-file", "not a regular file (device, pipe or socket)")
    if info.st_size == 0:
        return FileFailure(path, 0, info.st_mtime_ns, "empty", "file is empty (0 bytes)")
    try:
        digest = hashlib.blake2b(digest_size=20)
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as error:
        return FileFailure(path, info.st_size, info.st_mtime_ns, "unreadable", _os_message(error))
    file_format, duration, tags = read_file_tags(path)
    return Fingerprint(
        path=path,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        hash=digest.hexdigest(),
        format=file_format or os.path.splitext(path)[1].lstrip(".").lower() or None,
        duration=duration,
        tags=tags,
    )


def analyze(analyzer: Analyzer, fp: Fingerprint) -> MusicSegments | FileFailure:
    from viml.engine.music.runtime import SilentAudioError

    try:
        music = analyzer.analyze_file(fp.path)
    except SilentAudioError as error:
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "silent", error.reason)
    except Exception as error:
        return _failure(fp, error, "analysis")
    if len(music.starts) == 0:
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "too-short", "no audio segment to analyse")
    try:
        after = os.stat(fp.path)
    except OSError as error:
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "unreadable", _os_message(error))
    if (after.st_size, after.st_mtime_ns) != (fp.size, fp.mtime_ns):
        # The analysis may mix two versions of the file; the next scan (or --watch) picks it up again.
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "changed", "file changed while it was analysed")
    return music


@dataclass
class MeasureJob:
    """Measure what an analysed file's stored analysis lacks, from one decode and without the music model:
    its rhythm (a catalog from before the beat model; its segment embeddings come along for the sections)
    and/or its waveform (a catalog from before waveforms)."""

    fp: Fingerprint
    embeddings: object  # float32 [S, D], or None when the catalog holds no segments for it
    segment_starts: object  # float64 [S]
    rhythm: bool = True
    waveform: bool = True

    @property
    def path(self) -> str:
        return self.fp.path


@dataclass
class Measured:
    rhythm: Rhythm | None  # None: not asked for
    waveform: Waveform | None


def measure(analyzer: Analyzer, job: MeasureJob) -> Measured | FileFailure:
    """Decode the file once at the rhythm's rate, feeding the rhythm analysis (the analyzer's `rhythm`,
    when the job asks for it) and the waveform builder."""
    from viml.engine.media import iter_audio
    from viml.engine.music.rhythm.analysis import RHYTHM_SAMPLE_RATE
    from viml.engine.music.waveform import WaveformBuilder

    try:
        stream = analyzer.rhythm.stream() if job.rhythm else None  # type: ignore[attr-defined]
        builder = WaveformBuilder(RHYTHM_SAMPLE_RATE) if job.waveform else None
        for block in iter_audio(job.fp.path, RHYTHM_SAMPLE_RATE):
            if stream is not None:
                stream.push(block)
            if builder is not None:
                builder.push(block)
        rhythm = stream.finish(job.embeddings, job.segment_starts) if stream is not None else None
        return Measured(rhythm, builder.finish() if builder is not None else None)
    except Exception as error:
        return _failure(job.fp, error, "rhythm analysis" if job.rhythm else "waveform")


def _failure(fp: Fingerprint, error: Exception, what: str) -> FileFailure:
    """A file's failure from the exception its analysis raised: a bug on one hostile file (a decoder's or
    a model's) must not stop the scan, so every exception becomes a recorded failure."""
    if isinstance(error, MediaError):
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "undecodable", error.reason)
    if isinstance(error, OSError):
        return FileFailure(fp.path, fp.size, fp.mtime_ns, "unreadable", _os_message(error))
    message = f"{what} failed ({error.__class__.__name__}: {error})"
    return FileFailure(fp.path, fp.size, fp.mtime_ns, "analysis-error", message)


def read_file_tags(path: str) -> tuple[str | None, float | None, FileTags]:
    """Container format, duration, title/artist/album/first genre/BPM and every text field as words
    (`engine.music.filetags`, the same readers tag writing uses); nothing if mutagen cannot open the file."""
    from viml.engine.music.filetags import read_file

    info = read_file(path)
    if info is None:
        return None, None, FileTags()
    tags = info.tags
    genre = tags.genres[0] if tags.genres else None
    return (
        info.format,
        info.duration,
        FileTags(tags.title, tags.artist, tags.album, genre, tags.bpm, words=tags.words),
    )


def _os_message(error: OSError) -> str:
    return error.strerror or str(error)


# --- process-pool entry points (module level so they can be sent to worker processes) --------------

_worker_analyzer: Analyzer | None = None


def worker_init(spec: str, threads: int = 1) -> None:
    """Runs once in each worker process; `threads` is its share of the cores (threads_per_worker)."""
    global _worker_analyzer
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("VIML_ANALYZER_THREADS", str(threads))
    _worker_analyzer = load_analyzer(spec)


def worker_fingerprint(path: str) -> Fingerprint | FileFailure:
    return fingerprint(path)


def worker_analyze(fp: Fingerprint) -> MusicSegments | FileFailure:
    assert _worker_analyzer is not None, "worker_init was not run"
    return analyze(_worker_analyzer, fp)


def worker_measure(job: MeasureJob) -> Measured | FileFailure:
    assert _worker_analyzer is not None, "worker_init was not run"
    return measure(_worker_analyzer, job)
