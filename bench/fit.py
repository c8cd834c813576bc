"""Fit speed: plan and render a 60 s edit of a 4-minute 44.1 kHz stereo track.

    python bench/fit.py [--repeats 20] [--json out.json]

Baseline in the same run: a plain cut of the same length with a linear fade-out (numpy slicing, the
least any renderer does). The track is synthetic (a pad and clicks at 120 bpm, 4/4, sections every
16 bars) and its rhythm known, so the numbers are the fitting's alone, not the beat tracker's. The
edit is the "bars" strategy (a cut with a crossfade plus the track's ending), the costliest to render.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from viml.engine.music.fit import plan_fit, render_fit
from viml.engine.music.rhythm.types import Beats, Rhythm

RATE, SECONDS, BPM, TARGET = 44100, 240.0, 120.0, 60.0


def track() -> tuple[np.ndarray, Rhythm]:
    beat = 60.0 / BPM
    times = np.arange(0.25, SECONDS, beat)
    beats = Beats(times, (np.arange(len(times)) % 4 + 1).astype(np.int64), BPM, 0.9, 4)
    rhythm = Rhythm(beats, np.arange(0.25, SECONDS, 16 * 4 * beat), -14.0, duration=SECONDS)
    t = np.arange(int(SECONDS * RATE)) / RATE
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t) * (t % beat < 0.03)
    return np.stack([mono, 0.9 * mono], axis=1).astype(np.float32), rhythm


def plain_cut(audio: np.ndarray, start: float, seconds: float, fade: float) -> np.ndarray:
    first, count = int(round(start * RATE)), int(round(seconds * RATE))
    out = audio[first : first + count].copy()
    ramp = int(fade * RATE)
    out[-ramp:] *= np.linspace(1.0, 0.0, ramp, dtype=np.float32)[:, None]
    return out


def best(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    audio, rhythm = track()
    plan = plan_fit(rhythm, 30.0, TARGET, prefer="bars")
    planning = best(lambda: plan_fit(rhythm, 30.0, TARGET, prefer="bars"), args.repeats)
    planning_auto = best(lambda: plan_fit(rhythm, 30.0, TARGET), args.repeats)
    render = best(lambda: render_fit(audio, RATE, plan), args.repeats)
    baseline = best(lambda: plain_cut(audio, plan.start, TARGET, 1.0), args.repeats)
    results = {
        "track seconds": SECONDS,
        "edit seconds": TARGET,
        "sample rate": RATE,
        "channels": 2,
        "plan": plan.describe(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "plan seconds (bars)": planning,
        "plan seconds (auto)": planning_auto,
        "render seconds": render,
        "plain cut and fade seconds": baseline,
        "render over plain cut": render / baseline,
        "render speed (x real time)": TARGET / render,
    }
    for key, value in results.items():
        print(f"{key:>28}: {value:.4f}" if isinstance(value, float) else f"{key:>28}: {value}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
