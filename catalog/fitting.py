"""A track's rhythm from the catalog when it holds it, and fitted excerpts rendered from it.

`rhythm_of(path)` reads the stored rhythm when the catalog has the file unchanged (same size and mtime)
and measured it; otherwise it analyses the file (the converted BeatNet). `render_excerpt` plans and
renders a fit-to-length edit (engine/music/fit.py) and writes it, optionally loudness-matched to a
target (auditions of several suggestions then play at one loudness); `render_plain_excerpt` is the cut
without beats (when none are known or can be measured). Used by `viml fit`, `viml suggest --fit` and the
desktop app's drag-out and audition, which name their files with `file_title` and `file_clock`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from viml.catalog.store import Catalog, path_key
from viml.engine.music import fit
from viml.engine.music.rhythm.types import Beats, Rhythm

# Fitted edits are written at one loudness, so suggestions compare by their music, not their level.
FIT_LUFS = -16.0


def stored_rhythm(catalog: Catalog, path: str | os.PathLike) -> Rhythm | None:
    """The catalog's rhythm of `path`, if the file is catalogued, unchanged since, and measured."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    key = path_key(os.path.abspath(path))
    known = catalog.known_files(key).get(key)
    if known is None or known[2] is not None or known[:2] != (info.st_size, info.st_mtime_ns):
        return None
    track = catalog.track(path)
    return catalog.rhythm(track.hash) if track is not None else None


def rhythm_of(path: str | os.PathLike, catalog: Catalog | None = None) -> Rhythm:
    """The stored rhythm when there is one, else the file's rhythm measured now."""
    if catalog is not None:
        stored = stored_rhythm(catalog, path)
        if stored is not None:
            return stored
    from viml.engine.music.rhythm.analysis import analyze_rhythm_file

    return analyze_rhythm_file(path)


def render_excerpt(
    path: str | os.PathLike,
    start: float,
    duration: float,
    output: str | os.PathLike,
    catalog: Catalog | None = None,
    strategy: str = "auto",
    target_lufs: float | None = None,
    bits: int = 16,
) -> fit.FitPlan:
    """Write the fitted edit of `path` from `start` for exactly `duration` seconds to `output` (WAV or
    FLAC at the source's rate and channels); with `target_lufs`, gained to that integrated loudness
    (peaks kept below clipping)."""
    fit.audio_format(output)  # refuses an unknown extension before any decoding
    rhythm = rhythm_of(path, catalog)
    audio, sample_rate = fit.read_source_audio(path)
    plan = fit.plan_fit(rhythm, start, duration, prefer=strategy)
    edit = fit.render_fit(audio, sample_rate, plan)
    if target_lufs is not None:
        peak = float(abs(edit).max()) if edit.size else 0.0
        edit = edit * fit.gain_to_target(rhythm.loudness, target_lufs, peak=peak)
    fit.write_audio(Path(output), edit, sample_rate, bits=bits)
    return plan


def render_plain_excerpt(
    path: str | os.PathLike,
    start: float,
    duration: float,
    output: str | os.PathLike,
    target_lufs: float | None = None,
    bits: int = 16,
) -> fit.FitPlan:
    """Without beats: `duration` seconds of `path` from `start` (silence after the track's end) with the
    fit's short fade-in and fade-out ("cut" plan, same renderer), written like `render_excerpt`; with
    `target_lufs`, gained from the excerpt's own integrated loudness (mono mix, peaks kept below
    clipping)."""
    from viml.engine.music.rhythm.loudness import integrated_loudness

    fit.audio_format(output)
    audio, sample_rate = fit.read_source_audio(path)
    no_beats = Rhythm(Beats.empty(), np.zeros(1), float("nan"), duration=len(audio) / sample_rate)
    plan = fit.plan_fit(no_beats, start, duration)
    plan = dataclasses.replace(plan, note=plan.note.replace("no beats found", "no beats known"))
    edit = fit.render_fit(audio, sample_rate, plan)
    if target_lufs is not None and edit.size:
        loudness = integrated_loudness(edit.mean(axis=1), sample_rate)
        edit = edit * fit.gain_to_target(loudness, target_lufs, peak=float(abs(edit).max()))
    fit.write_audio(Path(output), edit, sample_rate, bits=bits)
    return plan


def file_title(title: str | None, path: str | os.PathLike) -> str:
    """A title fit for a file name on every platform: letters, digits, space, - and _ (dashes become -,
    the rest _), at most 60 characters; the file's stem when there is no title."""
    text = (title or Path(path).stem).replace("–", "-").replace("—", "-")
    return "".join(c if c.isalnum() or c in " -_" else "_" for c in text).strip()[:60].strip() or "excerpt"


def file_clock(seconds: float) -> str:
    """fit.clock for file names: 1m04.2 (no colon, which Windows and macOS refuse)."""
    return fit.clock(seconds).replace(":", "m")
