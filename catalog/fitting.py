"""A track's rhythm from the catalog when it holds it, and fitted excerpts rendered from it.

`rhythm_of(path)` reads the stored rhythm when the catalog has the file unchanged (same size and mtime)
and measured it; otherwise it analyses the file (the converted BeatNet). `render_excerpt` plans and
renders a fit-to-length edit (engine/music/fit.py) and writes it, optionally loudness-matched to a
target (auditions of several suggestions then play at one loudness). Used by `viml fit`, `viml suggest
--fit` and the desktop app's audition.
"""

from __future__ import annotations

import os
from pathlib import Path

from viml.catalog.store import Catalog, path_key
from viml.engine.music import fit
from viml.engine.music.rhythm.types import Rhythm


def stored_rhythm(catalog: Catalog, path: str | os.PathLike) -> Rhythm | None:
    """The catalog's rhythm of `path`, if the file is catalogued, unchanged since, and measured."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    known = catalog.known_files(path_key(os.path.abspath(path))).get(path_key(os.path.abspath(path)))
    if known is None or known[2] is not None or known[:2] != (info.st_size, info.st_mtime_ns):
        return None
    track = catalog.track(os.path.abspath(path))
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
