"""Section boundaries (verse, chorus, break ...) from the self-similarity of beat-synchronous features.

Each beat gets a feature vector: the mean of the beat network's 136 log-frequency bands over the beat
(timbre and loudness) joined with the music model's segment embedding at that beat (what the tagger
hears: instruments, mood), both standardised so neither dominates. A section boundary is where the
music before and after differ: Foote's novelty (a Gaussian-tapered checkerboard kernel slid along the
diagonal of the cosine self-similarity matrix, "Automatic audio segmentation using a measure of audio
novelty", ICME 2000). Only the diagonals the kernel covers are computed, so the cost is linear in the
number of beats. Peaks of the novelty at least MIN_SECTION_BARS apart and standing out from it become
boundaries, moved to the nearest downbeat.
 Tracks without a steady beat use half-second frames instead.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks
from viml.engine.music.rhythm.types import Beats

KERNEL_BARS = 4  # the kernel compares four bars before with four bars after
MIN_SECTION_BARS = 4
# Novelty is normalised by the kernel's weight: 0.5 for sections that share nothing, about 0.05 for
# noise. A boundary's novelty must reach NOVELTY_FLOOR and rise PROMINENCE above its surroundings.
NOVELTY_FLOOR = 0.08
PROMINENCE = 0.05
_FALLBACK_STEP = 0.5  # seconds per frame when there are no beats


def section_starts(
    beats: Beats,
    bands: np.ndarray,
    bands_fps: float,
    embeddings: np.ndarray | None = None,
    segment_starts: np.ndarray | None = None,
    duration: float | None = None,
) -> np.ndarray:
    """Section start times in seconds, 0.0 first; `bands` [T, F] frames at `bands_fps`."""
    bands = np.asarray(bands, dtype=np.float32)
    if duration is None:
        duration = len(bands) / bands_fps
    if len(beats.times) >= 2 * KERNEL_BARS * max(beats.beats_per_bar, 1):
        edges = np.concatenate([beats.times, [duration]])
        per_bar = beats.beats_per_bar
    else:
        edges = np.arange(0.0, duration + _FALLBACK_STEP, _FALLBACK_STEP)
        per_bar = 4  # eight-frame "bars" of two seconds
    features = _synchronous(bands, bands_fps, edges)
    if embeddings is not None and segment_starts is not None and len(embeddings):
        owner = np.clip(np.searchsorted(segment_starts, edges[:-1], side="right") - 1, 0, len(embeddings) - 1)
        features = np.concatenate(
            [features, _standardised(np.asarray(embeddings, np.float32)[owner])], axis=1
        )
    width = KERNEL_BARS * per_bar
    novelty = foote_novelty(features, width)
    if len(novelty) == 0:
        return np.array([0.0])
    peaks, _ = find_peaks(
        novelty, height=NOVELTY_FLOOR, distance=MIN_SECTION_BARS * per_bar, prominence=PROMINENCE
    )
    starts = edges[peaks]
    downbeats = beats.downbeats
    if len(downbeats):
        starts = downbeats[np.abs(downbeats[None, :] - starts[:, None]).argmin(axis=1)]
    starts = np.unique(starts[(starts > 0) & (starts < duration)])
    return np.concatenate([[0.0], starts])


def foote_novelty(features: np.ndarray, width: int) -> np.ndarray:
    """Novelty per row: the checkerboard kernel of half-width `width` rows on the cosine self-similarity,
    divided by the kernel's total weight (so 0.5 where the rows before and after share nothing)."""
    count = len(features)
    if count < 2:
        return np.zeros(count)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)
    offsets = np.arange(-width, width)  # kernel rows/columns relative to the centre (centre between -1 and 0)
    taper = np.exp(-0.5 * ((offsets + 0.5) / (0.5 * width)) ** 2)
    sign = np.where(offsets < 0, -1.0, 1.0)
    kernel = np.outer(sign * taper, sign * taper)  # + within the same side, - across
    padded = np.concatenate([np.zeros((width, unit.shape[1])), unit, np.zeros((width, unit.shape[1]))])
    novelty = np.zeros(count)
    for lag in range(-(2 * width - 1), 2 * width):
        # similarities S[i, i + lag] of the padded rows, then every kernel cell on this diagonal
        if lag >= 0:
            diagonal = np.sum(padded[: len(padded) - lag] * padded[lag:], axis=1)
        else:
            diagonal = np.sum(padded[-lag:] * padded[: len(padded) + lag], axis=1)
        cells = [(a, a + lag) for a in range(2 * width) if 0 <= a + lag < 2 * width]
        for a, b in cells:
            rows = np.arange(count) + width + offsets[min(a, b)]
            novelty += kernel[a, b] * diagonal[rows]
    return novelty / np.abs(kernel).sum()


def _synchronous(bands: np.ndarray, fps: float, edges: np.ndarray) -> np.ndarray:
    """Mean of the frames between consecutive edges (seconds), standardised per band."""
    frames = np.clip(np.round(edges * fps).astype(np.int64), 0, len(bands))
    frames = np.maximum.accumulate(frames)
    sums = np.concatenate([np.zeros((1, bands.shape[1])), np.cumsum(bands, axis=0, dtype=np.float64)])
    counts = np.maximum(np.diff(frames), 1)[:, None]
    means = (sums[frames[1:]] - sums[frames[:-1]]) / counts
    return _standardised(means)


def _standardised(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), 1e-6)
