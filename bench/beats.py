"""Beat and downbeat tracking against ground truth: ViML (BeatNet + tracker) vs librosa's beat tracker.

    python bench/beats.py [--datasets demo_world,frets_on_fire] [--limit N] [--world DIR]
                          [--alignment] [--onset-aligned] [--per-song] [--json out.json]

Ground truth (bench/beat_truth.py): the demo world's pieces (their MIDI; a 40-piece world, seed 0, is
generated into the cache unless --world names one) and the Frets on Fire songs of the Debian packages
(hand-authored MIDI charts on real recordings; the stems are mixed once into the cache).

Per song and method: beat F-measure (mir_eval, +-70 ms), downbeat F-measure (the same on downbeats;
librosa tracks no downbeats: "—"), CMLt / AMLt (mir_eval continuity), tempo Acc1 (within 4 % of the
true tempo) and Acc2 (also at x2, x1/2, x3, x1/3), and the median signed error of beats matched within
70 ms (estimate minus truth, ms). The first 5 s are left out, as mir_eval.beat.trim_beats does.
Averages are over songs; seconds per minute of audio include decoding for both methods.

The baseline, measured in the same run on the same decoded audio (PyAV, mono, soxr HQ to 22050 Hz: what
librosa.load does; librosa.load itself cannot open the world's M4A files), is
`librosa.beat.beat_track` with its default settings. --alignment also prints, per song, how well the
true grid sits on the audio's onsets (beat_truth.grid_offset). --onset-aligned is a sensitivity check,
not the headline: each true grid is first moved onto the audio's onsets (its best shift within 60 ms,
less the onset flux's own lag), which shows how much of a score is a chart's constant offset.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import librosa
import mir_eval
import numpy as np
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir
from viml.engine.media import read_audio

sys.path.insert(0, str(Path(__file__).parent))
from beat_truth import (  # noqa: E402
    FLUX_LAG,
    TrueBeats,
    grid_offset,
    load_demo_world,
    load_frets_on_fire,
    shifted,
)

DATASETS = ("demo_world", "frets_on_fire")
TITLES = {"demo_world": "demo world", "frets_on_fire": "Frets on Fire"}
DEMO_PIECES, DEMO_SEED = 40, 0
SAMPLE_RATE = 22050
# grid_offset search near the true grid, seconds (beyond the flux lag and any chart offset).
NEAR = 0.06
WINDOW = 0.07  # mir_eval's F-measure window, seconds
TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1 / 3)
METRICS = (
    "beat_f_measure",
    "downbeat_f_measure",
    "tempo_acc1",
    "tempo_acc2",
    "cmlt",
    "amlt",
    "beat_offset_ms",
    "seconds_per_minute",
)


@dataclass(frozen=True)
class Estimate:
    beats: np.ndarray
    downbeats: np.ndarray | None  # None: the method tracks no downbeats
    tempo: float
    seconds: float  # wall time, decoding included


Tracker = Callable[[Path], Estimate]


def librosa_tracker(path: Path) -> Estimate:
    start = time.perf_counter()
    samples = read_audio(path, SAMPLE_RATE)
    tempo, frames = librosa.beat.beat_track(y=samples, sr=SAMPLE_RATE)
    beats = librosa.frames_to_time(frames, sr=SAMPLE_RATE)
    return Estimate(beats, None, float(np.atleast_1d(tempo)[0]), time.perf_counter() - start)


def viml_tracker() -> Tracker | str:
    """ViML's analysis as a tracker, or the reason it cannot run here (module or model missing)."""
    try:
        from viml.engine.music.rhythm.analysis import RhythmAnalyzer, analyze_rhythm_file
    except ImportError as error:
        return f"viml.engine.music.rhythm.analysis is not importable ({error})"
    try:
        analyzer = RhythmAnalyzer.load()  # once: model loading is not per song
    except UserFacingError as error:
        return str(error)

    def track(path: Path) -> Estimate:
        start = time.perf_counter()
        beats = analyze_rhythm_file(path, analyzer).beats
        return Estimate(beats.times, beats.downbeats, float(beats.tempo), time.perf_counter() - start)

    return track


def warm_up(trackers: dict[str, Tracker]) -> None:
    """Run each tracker once on a short click track so JIT compilation and first-run set-up are not timed."""
    import tempfile

    from viml.demo.world.media_out import write_audio

    clicks = np.zeros((SAMPLE_RATE * 8, 2), np.float32)
    clicks[:: SAMPLE_RATE // 2][:, :] = 1.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clicks.wav"
        write_audio(path, clicks, SAMPLE_RATE)
        for tracker in trackers.values():
            tracker(path)


def tempo_hits(estimate: float, truth: float) -> tuple[bool, bool]:
    """(Acc1, Acc2): within 4 % of the true tempo; of the true tempo times 1, 2, 1/2, 3 or 1/3."""
    if not (math.isfinite(estimate) and math.isfinite(truth)) or truth <= 0:
        return False, False
    close = [abs(estimate - truth * factor) <= TEMPO_TOLERANCE * truth * factor for factor in OCTAVE_FACTORS]
    return close[0], any(close)


def beat_offset(reference: np.ndarray, estimated: np.ndarray) -> float:
    """Median of (nearest estimate - reference beat) over reference beats matched within the window, s."""
    if len(reference) == 0 or len(estimated) == 0:
        return float("nan")
    index = np.searchsorted(estimated, reference)
    left = estimated[np.clip(index - 1, 0, len(estimated) - 1)]
    right = estimated[np.clip(index, 0, len(estimated) - 1)]
    nearest = np.where(np.abs(left - reference) <= np.abs(right - reference), left, right)
    errors = nearest - reference
    errors = errors[np.abs(errors) <= WINDOW]
    return float(np.median(errors)) if len(errors) else float("nan")


def score(truth: TrueBeats, estimate: Estimate) -> dict[str, float | None]:
    reference = mir_eval.beat.trim_beats(truth.beats)
    estimated = mir_eval.beat.trim_beats(np.sort(np.asarray(estimate.beats, dtype=np.float64)))
    _, cmlt, _, amlt = mir_eval.beat.continuity(reference, estimated)
    downbeat = None
    if estimate.downbeats is not None:
        downbeat = mir_eval.beat.f_measure(
            mir_eval.beat.trim_beats(truth.downbeats),
            mir_eval.beat.trim_beats(np.sort(np.asarray(estimate.downbeats, dtype=np.float64))),
            WINDOW,
        )
    acc1, acc2 = tempo_hits(estimate.tempo, truth.tempo)
    return {
        "beat_f_measure": mir_eval.beat.f_measure(reference, estimated, WINDOW),
        "downbeat_f_measure": downbeat,
        "tempo_acc1": float(acc1),
        "tempo_acc2": float(acc2),
        "cmlt": cmlt,
        "amlt": amlt,
        "beat_offset_ms": 1000 * beat_offset(reference, estimated),
        "tempo": estimate.tempo,
        "seconds": estimate.seconds,
    }


def summarise(rows: list[dict], minutes: float) -> dict[str, float | None]:
    """Means over songs (the offset: median over songs); speed over the whole dataset."""
    summary: dict[str, float | None] = {}
    for key in METRICS[:-1]:
        values = [row[key] for row in rows if row[key] is not None and math.isfinite(row[key])]
        if key == "downbeat_f_measure" and all(row[key] is None for row in rows):
            summary[key] = None
        elif key == "beat_offset_ms":
            summary[key] = statistics.median(values) if values else None
        else:
            summary[key] = statistics.fmean(values) if values else None
    summary["seconds_per_minute"] = sum(row["seconds"] for row in rows) / minutes if minutes else None
    return summary


def load_dataset(name: str, args: argparse.Namespace) -> list[TrueBeats]:
    bench_cache = cache_dir() / "bench" / "beats"
    if name == "frets_on_fire":
        return load_frets_on_fire(bench_cache / "fof-mix", limit=args.limit)
    world = args.world or bench_cache / f"world-n{DEMO_PIECES}-s{DEMO_SEED}"
    if not (world / "world.json").is_file():
        if args.world:
            raise UserFacingError(f"{world}: no world.json; generate one with `viml world generate {world}`")
        from viml.demo.world.generate import generate_world

        print(f"generating a {DEMO_PIECES}-piece demo world into {world} ...", flush=True)
        generate_world(world, pieces=DEMO_PIECES, seed=DEMO_SEED, overwrite=world.exists())
    return load_demo_world(world, limit=args.limit)


def alignment(songs: list[TrueBeats]) -> list[dict]:
    """Per song: the shift of the true grid that best fits the audio's onsets (see grid_offset), near
    the grid (+-NEAR s) and over +-half a beat (where a stronger off-beat shows up)."""
    lines = []
    for song in songs:
        samples = read_audio(song.audio, SAMPLE_RATE)
        near, near_z = grid_offset(samples, SAMPLE_RATE, song.beats, max_shift=NEAR)
        best, best_z = grid_offset(samples, SAMPLE_RATE, song.beats)
        lines.append(
            {"song": song.name, "near_shift_ms": 1000 * near, "near_z": near_z, "best_shift_ms": 1000 * best}
            | {"best_z": best_z}
        )
        print(
            f"  align {song.name:34s} near the grid: {1000 * near:+4.0f} ms z {near_z:5.2f}   "
            f"within half a beat: {1000 * best:+5.0f} ms z {best_z:5.2f}",
            flush=True,
        )
    return lines


def run_dataset(name: str, songs: list[TrueBeats], trackers: dict[str, Tracker], args) -> dict:
    minutes = sum(song.duration for song in songs) / 60
    per_song: list[dict] = []
    rows: dict[str, list[dict]] = {method: [] for method in trackers}
    for song in songs:
        entry: dict = {"song": song.name, "tempo": song.tempo, "beats": len(song.beats), "delay": song.delay}
        for method, tracker in trackers.items():
            row = score(song, tracker(song.audio))
            rows[method].append(row)
            entry[method] = row
        per_song.append(entry)
        if args.per_song:
            cells = "  ".join(
                f"{method} F {entry[method]['beat_f_measure']:.3f} tempo {entry[method]['tempo']:6.1f}"
                for method in trackers
            )
            print(f"  {song.name:34s} true tempo {song.tempo:6.1f}  {cells}", flush=True)
    result: dict = {"songs": len(songs), "minutes": minutes}
    for method in trackers:
        result[method] = summarise(rows[method], minutes)
    if "viml" in trackers and result["librosa"]["beat_f_measure"]:
        result["beat_f_measure_ratio_viml_to_librosa"] = (
            result["viml"]["beat_f_measure"] / result["librosa"]["beat_f_measure"]
        )
    result["per_song"] = per_song
    return result


def _cell(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_table(results: dict) -> None:
    header = (
        f"{'dataset':15s} {'method':8s} {'songs':>5s} {'min':>6s} {'beat F':>7s} {'downb F':>7s} "
        f"{'Acc1':>5s} {'Acc2':>5s} {'CMLt':>6s} {'AMLt':>6s} {'offs ms':>7s} {'s/min':>6s}"
    )
    print(f"\ntruth: {results['truth']}\n" + header + "\n" + "-" * len(header))
    for name, result in results.items():
        if name not in TITLES:
            continue
        for method in ("viml", "librosa"):
            if method not in result:
                continue
            m = result[method]
            print(
                f"{TITLES[name]:15s} {method:8s} {result['songs']:5d} {result['minutes']:6.1f} "
                f"{_cell(m['beat_f_measure']):>7s} {_cell(m['downbeat_f_measure']):>7s} "
                f"{_cell(m['tempo_acc1'], 2):>5s} {_cell(m['tempo_acc2'], 2):>5s} {_cell(m['cmlt']):>6s} "
                f"{_cell(m['amlt']):>6s} {_cell(m['beat_offset_ms'], 0):>7s} {_cell(m['seconds_per_minute'], 2):>6s}"
            )
    for name, result in results.items():
        if name in TITLES and "beat_f_measure_ratio_viml_to_librosa" in result:
            ratio = result["beat_f_measure_ratio_viml_to_librosa"]
            print(f"{TITLES[name]}: ViML / librosa beat F-measure = {ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS)
    )
    parser.add_argument("--limit", type=int, help="at most this many songs per dataset")
    parser.add_argument(
        "--world", type=Path, help="an existing demo world folder (default: generated in the cache)"
    )
    parser.add_argument(
        "--alignment", action="store_true", help="print how well each true grid fits the onsets"
    )
    parser.add_argument(
        "--onset-aligned",
        action="store_true",
        help="sensitivity check: move each true grid onto the audio's onsets (near shift minus the flux lag)",
    )
    parser.add_argument("--per-song", action="store_true", help="print each song's F-measure and tempo")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown or not names:
        parser.error(
            f"unknown dataset(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(DATASETS)}"
        )
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    trackers: dict[str, Tracker] = {}
    viml = viml_tracker()
    if isinstance(viml, str):
        print(f"ViML row skipped: {viml}\n(the row needs the rhythm analysis and `viml convert-beatnet`)")
    else:
        trackers["viml"] = viml
    trackers["librosa"] = librosa_tracker
    warm_up(trackers)

    results: dict = {"truth": "onset-aligned (sensitivity check)" if args.onset_aligned else "as authored"}
    try:
        for name in names:
            songs = load_dataset(name, args)
            minutes = sum(song.duration for song in songs) / 60
            print(f"{TITLES[name]}: {len(songs)} songs, {minutes:.1f} min", flush=True)
            aligned = alignment(songs) if args.alignment or args.onset_aligned else None
            if args.onset_aligned:
                songs = [
                    shifted(song, line["near_shift_ms"] / 1000 - FLUX_LAG)
                    for song, line in zip(songs, aligned, strict=True)
                ]
            results[name] = run_dataset(name, songs, trackers, args)
            if aligned is not None:
                results[name]["alignment"] = aligned
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(_plain(results), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0


def _plain(value: object) -> object:
    """JSON-ready: numpy scalars as numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    raise SystemExit(main())
