"""Desktop responsiveness: the longest GUI event-loop stall during a big scan and while typing queries,
and the time from launch to an interactive window over a 10,000-track catalog.

    python bench/ui_latency.py [--tracks 1000] [--scan-seconds 20] [--catalog-tracks 10000] [--json out.json]

What is measured (offscreen Qt, this machine):
- stall: a QTimer heartbeat every 10 ms records the gap between its ticks; a stall is a gap minus 10 ms.
  Baseline: the same window, shown and idle (`--idle-seconds`), in this run: what the machine's load
  alone does to the heartbeat, so the phases' figures are printed as ratios to it as well as to the target.
  Phase 1: the app scans a folder of `--tracks` generated WAV files (2 s tones, each with its own
  frequency and phase, so every file is distinct content and really decoded and analysed) in its child
  `viml scan` process, with the real musicnn models (converted here) unless they are unavailable.
  Phase 2: the same scan keeps running while prompts are typed into the prompt box key by key, ~6 keys a
  second with a 1.5 s pause after each prompt (each keystroke a debounced query through a zero-shot
  bundle built here: MiniLM + musicnn, no CLIP; each answer embeds the tracks committed since the last).
  The scan is cancelled after the phases; the output says how many files it had committed by then.
- launch: a fresh `python` process creates the app over a catalog of `--catalog-tracks` SYNTHETIC tracks
  written straight through catalog/store.py (random embeddings and tag probabilities, 3 segments each,
  paths that do not exist on disk, so the library lists them as missing); timed from before the process
  starts to (a) the window shown and processing events and (b) the library list filled.
- paint: the results' "Match over the track" column for `--paint-rows` results (4-minute tracks with a
  stored waveform, a finer match curve every 2 s, downbeats, sections, a clip strip, one now-playing
  marker) painted by its delegate into an image the size of the column, median of `--paints` paints;
  the baseline, measured the same way in this run, is the curve-only delegate the column had before
  waveforms. Also timed: drawing the cells once where the results are made (`waveform.prepare`, on
  the query's worker thread in the app), which every later paint copies, and showing them
  (`set_suggestions`, GUI thread). `--paint-only` runs just this.
Each phase records the 1-minute load average at its end (other processes share the cores).
Targets: no stall over 100 ms; launch under 2 s; the 50 results' waveform cells painted in under 16 ms
(a frame at 60 Hz). Ratios are measured / target (below 1 is within target), and the paint's also
measured / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from PySide6.QtCore import QCoreApplication

STALL_TARGET_MS = 100.0
PAINT_TARGET_MS = 16.0
LAUNCH_TARGET_S = 2.0
HEARTBEAT_MS = 10
PROMPT_PAUSE_S = 1.5
PROMPTS = ["calm piano", "energetic rock with drums", "dreamy electronic", "sad strings at night"]


def write_tracks(folder: Path, count: int, seconds: float = 2.0, rate: int = 16000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for index in range(count):
        frequency = 110.0 * 2 ** (index / 120)  # a different tone per file: distinct content hashes
        samples = 0.3 * np.sin(2 * np.pi * frequency * t + index) * np.exp(-t / (0.5 + index % 7 / 4))
        with wave.open(str(folder / f"tone-{index:04d}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes((samples * 32767).astype("<i2").tobytes())


class Heartbeat:
    """Ticks every HEARTBEAT_MS on the GUI thread and keeps the gaps between ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def measure(
        self, app: QCoreApplication, seconds: float, during: Callable[[float], None] | None = None
    ) -> dict:
        """Run the event loop for `seconds` (calling `during(elapsed)` from a 50 ms timer); gap figures."""
        from PySide6.QtCore import QEventLoop, QTimer

        self.gaps, self.last = [], time.perf_counter()
        loop = QEventLoop()
        started = time.perf_counter()
        driver = QTimer()
        driver.setInterval(50)
        if during is not None:
            driver.timeout.connect(lambda: during(time.perf_counter() - started))
        driver.start()
        self.timer.start()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        self.timer.stop()
        driver.stop()
        stalls = np.maximum(np.array(self.gaps) - HEARTBEAT_MS / 1000, 0.0) * 1000
        return {
            "seconds": round(seconds, 1),
            "load average at the end": round(os.getloadavg()[0], 1),
            "heartbeats": len(self.gaps),
            "longest stall ms": round(float(stalls.max()), 1) if len(stalls) else None,
            "99th percentile stall ms": round(float(np.percentile(stalls, 99)), 1) if len(stalls) else None,
            "stalls over 100 ms": int((stalls > STALL_TARGET_MS).sum()),
            # When they happened (seconds into the phase): tells start-up costs from steady state.
            "stalls over 100 ms at s": [
                round(float(np.sum(self.gaps[: i + 1])), 2) for i in np.flatnonzero(stalls > STALL_TARGET_MS)
            ],
        }


def prepare_models(home: Path) -> tuple[str | None, str, Path | None]:
    """(analyzer spec or None for musicnn, what scans, zero-shot bundle folder or None)."""
    os.environ["VIML_HOME"] = str(home)
    try:
        from viml.export_onnx.musicnn import convert

        convert()
    except Exception as error:  # no wheel offline: the scan still runs, with the test analyzer
        print(f"musicnn unavailable ({error}); scanning with audio statistics instead", file=sys.stderr)
        return "viml.demo.stats_analyzer:load", "audio statistics (no music model)", None
    from viml.export_onnx.build import build_bundle

    bundle = build_bundle("zero-shot", quantize=False)
    return None, "musicnn MTT+MSD (ONNX)", bundle


def scan_and_type(args: argparse.Namespace, scratch: Path) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from viml.catalog.store import Catalog
    from viml.desktop.app import create_application
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    analyzer, analysed_by, bundle = prepare_models(scratch / "home")
    music = scratch / "music"
    write_tracks(music, args.tracks)
    app = create_application(offscreen=True)
    settings = AppSettings()
    settings.catalog = str(scratch / "catalog.sqlite")
    settings.bundle = str(bundle) if bundle else None
    if analyzer:
        settings._set("analyzer", analyzer)
    window = MainWindow(settings, audio_device="no-such-device")
    window.show()
    heartbeat = Heartbeat()
    heartbeat.measure(app, 1.0)  # settle: first paint, library load
    idle = heartbeat.measure(app, args.idle_seconds)  # the baseline: nothing to do but tick
    window.add_music_folders([str(music)])
    scanning = heartbeat.measure(app, args.scan_seconds)

    typed = {"keys": 0, "answers": 0, "errors": []}
    window.query.result.connect(lambda _rows: typed.__setitem__("answers", typed["answers"] + 1))
    window.query.error.connect(lambda message: typed["errors"].append(message))
    text = " | ".join(PROMPTS)
    position = {"next": 0.0, "index": 0}

    def type_key(elapsed: float) -> None:
        # ~6 keys a second (each keystroke restarts the 250 ms debounce, so mid-word queries are rare);
        # at '|' a pause of PROMPT_PAUSE_S to read the answer, then the box is cleared for the next prompt.
        if elapsed < position["next"]:
            return
        position["next"] = elapsed + 0.16
        char = text[position["index"] % len(text)]
        position["index"] += 1
        if char == "|":
            position["next"] = elapsed + PROMPT_PAUSE_S
            typed["prompts finished"] = typed.get("prompts finished", 0) + 1
        elif char == " " and text[position["index"] - 2] == "|":
            window.prompt.clear()
        else:
            QTest.keyClick(window.prompt, char if char != " " else Qt.Key.Key_Space)
        typed["keys"] += 1

    typing = heartbeat.measure(app, args.type_seconds, during=type_key)
    still_scanning = window.scan_task is not None
    window.cancel_scan()
    deadline = time.monotonic() + 30
    while window.scan_task is not None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    with Catalog(scratch / "catalog.sqlite") as catalog:
        committed = catalog.counts()["tracks"]
    window.close()
    return {
        "files in the scanned folder": args.tracks,
        "files committed by the scan during the measurement": committed,
        "scan still running during both phases": still_scanning,
        "analysed by": analysed_by,
        "queries through": "zero-shot bundle (MiniLM + musicnn)" if bundle else "none (no bundle)",
        "idle (baseline)": idle,
        "during scan": scanning,
        "during scan and typing": {
            **typing,
            "keys typed": typed["keys"],
            "prompts typed to the end": typed.get("prompts finished", 0),
            "query answers shown": typed["answers"],
            "query errors": sorted(set(typed["errors"])),
        },
        "bundle shown in the status bar": window.bundle_label.text(),
    }


def synthetic_catalog(path: Path, tracks: int, seed: int = 0) -> float:
    """Write `tracks` synthetic tracks through catalog/store.py; returns the seconds it took."""
    from viml.catalog.store import Catalog, FileTags, Fingerprint
    from viml.engine.music.types import MusicSegments

    rng = np.random.default_rng(seed)
    names = {"MTT": [f"mtt tag {i}" for i in range(50)], "MSD": [f"msd tag {i}" for i in range(50)]}
    started = time.perf_counter()
    with Catalog(path) as catalog:
        run = catalog.start_run("/synthetic", "synthetic")
        for index in range(tracks):
            music = MusicSegments(
                starts=np.array([0.0, 10.0, 20.0]),
                ends=np.array([10.0, 20.0, 30.0]),
                embeddings=rng.standard_normal((3, 400)).astype(np.float32),
                tag_probabilities={k: rng.random((3, 50)).astype(np.float32) for k in names},
                tag_names=names,
            )
            fp = Fingerprint(
                path=f"/synthetic/artist {index % 97}/track-{index:05d}.mp3", size=1000 + index,
                mtime_ns=index, hash=f"{index:040x}", format="mp3", duration=30.0,
                tags=FileTags(title=f"Track {index}", artist=f"Artist {index % 97}"),
            )  # fmt: skip
            catalog.write_analysis(fp, "synthetic", music, run)
        catalog.finish_run(run, "done", {})
    return time.perf_counter() - started


def paint_rows(count: int, seed: int = 0) -> list:
    """`count` results as the desktop gets them: 4-minute tracks with stored waveforms and finer curves."""
    from viml.desktop.results import Suggestion
    from viml.desktop.why import Why
    from viml.engine.music.waveform import POINTS_PER_SECOND, Waveform

    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        seconds = 240.0 + 10 * (index % 7)
        points = int(seconds * POINTS_PER_SECOND)
        level = np.clip(200 + 30 * np.sin(np.arange(points) / 400) + rng.normal(0, 8, points), 0, 255)
        peak = level.astype(np.uint8)
        rms = np.clip(level - 25, 0, 255).astype(np.uint8)
        starts = np.arange(0.0, seconds - 12.0, 2.0)
        offset = float(starts[rng.integers(len(starts))])
        rows.append(Suggestion(
            f"/music/track-{index:02d}.flac", f"Track {index}", 1.0 - index / count, offset, 12.0, seconds,
            ("rock", "guitar"), rng.random(int(seconds // 10)).astype(np.float32), 10.0, clip_length=12.0,
            waveform=Waveform(POINTS_PER_SECOND, peak, rms),
            fine_curve=np.column_stack([starts, rng.random(len(starts))]),
            downbeats=tuple(np.arange(offset, offset + 12.0, 2.0)), sections=tuple(np.arange(0.0, seconds, 30.0)),
            why=Why(),
        ))  # fmt: skip
    return rows


def paint_column(delegate, model, width: int, height: int) -> float:
    """Milliseconds to paint every row's curve cell of `model` into one image of the column."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QStyleOptionViewItem

    image = QImage(width, height * model.rowCount(), QImage.Format_ARGB32_Premultiplied)
    image.fill(0xFFFFFFFF)
    option = QStyleOptionViewItem()
    started = time.perf_counter()
    painter = QPainter(image)
    for row in range(model.rowCount()):
        option.rect = QRect(0, row * height, width, height)
        delegate.paint(painter, option, model.index(row, model.CURVE_COLUMN))
    painter.end()
    return (time.perf_counter() - started) * 1000


def none_references_lost_per_call() -> int:
    """How many references to None one Qt call that returns nothing loses: 1 with PySide6 6.12.0 on
    Python 3.11 (where None is not yet immortal), 0 with a sound binding."""
    from PySide6.QtGui import QColor

    color, before = QColor(), sys.getrefcount(None)
    for _ in range(100):
        color.setRed(1)
    return round((before - sys.getrefcount(None)) / 100)


def keep_none_alive() -> bool:
    """The baseline delegate makes ~60 such calls a cell, so 30 paints of 50 rows would take None's count
    to 0 and abort Python ("deallocating None"): give None the count Python 3.12 gives it (immortal).
    Returns whether it was needed."""
    if not none_references_lost_per_call():
        return False
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40  # ob_refcnt, the object's first field
    return True


def paint(args: argparse.Namespace) -> dict:
    from viml.desktop.app import create_application
    from viml.desktop.results import MatchCurveDelegate, ResultsModel
    from viml.desktop.waveform import CELL_WIDTH, ROW_HEIGHT, WaveformDelegate, prepare

    create_application(offscreen=True)
    guarded = keep_none_alive()
    rows = paint_rows(args.paint_rows)
    model = ResultsModel()
    model.set_suggestions(rows)
    new, old = WaveformDelegate(), MatchCurveDelegate()
    first = paint_column(new, model, CELL_WIDTH, ROW_HEIGHT)  # nothing drawn yet: every cell drawn now
    # The next result list, as a query makes it: its cells drawn where it is made (a worker thread in the
    # app; timed here on this one), then shown on the GUI thread.
    started = time.perf_counter()
    prepared = prepare(rows)
    made = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    model.set_suggestions(prepared)
    shown = (time.perf_counter() - started) * 1000
    model.set_now_playing(0, rows[0].offset + 3.0)
    waveform = [paint_column(new, model, CELL_WIDTH, ROW_HEIGHT) for _ in range(args.paints)]
    baseline = [paint_column(old, model, CELL_WIDTH, ROW_HEIGHT) for _ in range(args.paints)]
    paint_ms, baseline_ms = float(np.median(waveform)), float(np.median(baseline))
    return {
        "results": args.paint_rows,
        "cell width px": CELL_WIDTH,
        "cell height px": ROW_HEIGHT,
        "paints": args.paints,
        "waveform paint of the results ms (median)": round(paint_ms, 2),
        "curve-only paint of the results ms (median, baseline)": round(baseline_ms, 2),
        "paint ratio to the baseline": round(paint_ms / baseline_ms, 2) if baseline_ms > 0 else None,
        "first paint, every cell drawn then, ms": round(first, 2),
        "drawing every cell where the results are made ms (a worker thread)": round(made, 2),
        "showing the drawn results ms (GUI thread)": round(shown, 2),
        "paint target ms": PAINT_TARGET_MS,
        "paint ratio to target": round(paint_ms / PAINT_TARGET_MS, 2),
        "None kept alive for a PySide6 that loses references to it": guarded,
    }


LAUNCH_CHILD = """
import sys, time, json
sys.argv = sys.argv[:1]
from viml.desktop.app import create_application
from viml.desktop.main_window import MainWindow
from viml.desktop.settings import AppSettings
app = create_application(offscreen=True)
settings = AppSettings()
settings.catalog = CATALOG
window = MainWindow(settings)
window.show()
app.processEvents()
shown = time.time()
while window.library.model.rowCount() < TRACKS and time.time() - shown < 60:
    app.processEvents(); time.sleep(0.002)
filled = time.time()
print(json.dumps({"shown": shown, "filled": filled, "rows": window.library.model.rowCount()}))
"""


def launch(args: argparse.Namespace, scratch: Path) -> dict:
    catalog = scratch / "big.sqlite"
    write_seconds = synthetic_catalog(catalog, args.catalog_tracks)
    code = LAUNCH_CHILD.replace("CATALOG", repr(str(catalog))).replace("TRACKS", str(args.catalog_tracks))
    env = {**os.environ, "VIML_HOME": str(scratch / "launch-home"), "QT_QPA_PLATFORM": "offscreen"}
    runs = []
    for _ in range(args.launches):
        before = time.time()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append((result["shown"] - before, result["filled"] - before, result["rows"]))
    return {
        "catalog": f"{args.catalog_tracks} synthetic tracks written through catalog/store.py "
        f"(3 segments each, paths not on disk) in {write_seconds:.1f} s",
        "launches": args.launches,
        "window shown and processing events s (best)": round(min(r[0] for r in runs), 2),
        "library list filled s (best)": round(min(r[1] for r in runs), 2),
        "library list filled s (each run)": [round(r[1], 2) for r in runs],
        "rows listed": runs[-1][2],
    }


def print_stall(figures: dict, args: argparse.Namespace) -> None:
    t = figures["targets"]
    stall = figures["stall"]
    print(f"scan: {stall['files committed by the scan during the measurement']} of "
          f"{stall['files in the scanned folder']} generated 2 s WAV files committed while measuring "
          f"(analysed by {stall['analysed by']}); queries through {stall['queries through']}")  # fmt: skip
    for phase in ("idle (baseline)", "during scan", "during scan and typing"):
        row = stall[phase]
        ratio = "" if phase == "idle (baseline)" else f"  x{row['longest stall ratio to idle']:.1f} idle's"
        print(f"  {phase:24} longest stall {row['longest stall ms']:7.1f} ms{ratio}  "
              f"p99 {row['99th percentile stall ms']:6.1f} ms  over 100 ms: {row['stalls over 100 ms']}  "
              f"({row['heartbeats']} heartbeats in {row['seconds']} s, load {row['load average at the end']}) "
              f"at {row['stalls over 100 ms at s']} s")  # fmt: skip
    row = stall["during scan and typing"]
    print(f"  typing: {row['keys typed']} keys, {row['query answers shown']} query answers shown, "
          f"errors {row['query errors'] or 'none'}; {stall['bundle shown in the status bar']}")  # fmt: skip
    print(f"longest stall {t['longest stall ms']:.1f} ms vs target {STALL_TARGET_MS:.0f} ms: "
          f"ratio {t['stall ratio to target']:.2f}")  # fmt: skip
    launch_figures = figures.get("launch")
    if launch_figures:
        print(f"launch over {launch_figures['catalog']}:")
        print(f"  window shown {launch_figures['window shown and processing events s (best)']:.2f} s, library "
              f"filled {launch_figures['library list filled s (best)']:.2f} s (best of {args.launches}) vs "
              f"target {LAUNCH_TARGET_S:.0f} s: ratio {t['launch ratio to target']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1000, help="files in the scanned folder")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="the idle baseline's length")
    parser.add_argument("--scan-seconds", type=float, default=20.0, help="measure this long during the scan")
    parser.add_argument("--type-seconds", type=float, default=15.0, help="then this long while typing")
    parser.add_argument("--catalog-tracks", type=int, default=10000, help="tracks in the launch catalog")
    parser.add_argument("--launches", type=int, default=3, help="launch timings (0: skip them)")
    parser.add_argument("--paint-rows", type=int, default=50, help="results in the paint measure")
    parser.add_argument("--paints", type=int, default=30, help="paints timed (the median is reported)")
    parser.add_argument("--paint-only", action="store_true", help="only the paint measure")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = Path(tempfile.mkdtemp(prefix="viml-ui-latency-"))
    load = os.getloadavg()[0]
    figures: dict = {"load average at start": round(load, 1), "cpu cores": os.cpu_count(), "targets": {}}
    t = figures["targets"]
    if not args.paint_only:
        figures["stall"] = stall = scan_and_type(args, scratch)
        idle = stall["idle (baseline)"]
        for phase in ("during scan", "during scan and typing"):
            for key in ("longest stall", "99th percentile stall"):
                base = max(idle[f"{key} ms"], 0.1)  # an idle loop on a quiet machine: ~0 ms
                stall[phase][f"{key} ratio to idle"] = round(stall[phase][f"{key} ms"] / base, 1)
        worst = max(
            figures["stall"][p]["longest stall ms"] for p in ("during scan", "during scan and typing")
        )
        t.update({"longest stall ms": worst, "stall target ms": STALL_TARGET_MS,
                  "stall ratio to target": round(worst / STALL_TARGET_MS, 2)})  # fmt: skip
        if args.launches > 0:
            figures["launch"] = launch(args, scratch)
            filled = figures["launch"]["library list filled s (best)"]
            t.update({"launch to filled library s": filled, "launch target s": LAUNCH_TARGET_S,
                      "launch ratio to target": round(filled / LAUNCH_TARGET_S, 2)})  # fmt: skip
    figures["paint"] = painted = paint(args)
    t.update({"waveform paint ms": painted["waveform paint of the results ms (median)"],
              "paint target ms": PAINT_TARGET_MS, "paint ratio to target": painted["paint ratio to target"]})  # fmt: skip
    if not args.paint_only:
        print_stall(figures, args)
    print(f"paint of {painted['results']} results' match column ({painted['cell width px']} x "
          f"{painted['cell height px']} px cells, median of {painted['paints']}): waveform "
          f"{painted['waveform paint of the results ms (median)']:.2f} ms vs curve-only baseline "
          f"{painted['curve-only paint of the results ms (median, baseline)']:.2f} ms: ratio "
          f"{painted['paint ratio to the baseline']:.2f}; vs target {PAINT_TARGET_MS:.0f} ms: ratio "
          f"{painted['paint ratio to target']:.2f}")  # fmt: skip
    made = painted["drawing every cell where the results are made ms (a worker thread)"]
    print(f"  drawn once, off the GUI thread: {made:.1f} ms where the results are made; shown in "
          f"{painted['showing the drawn results ms (GUI thread)']:.1f} ms (a first paint that draws them all: "
          f"{painted['first paint, every cell drawn then, ms']:.1f} ms)")  # fmt: skip
    print(f"(load average {load:.1f} on {os.cpu_count()} cores at start)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
