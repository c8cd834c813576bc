"""Where in a track the music starts: finer windows than the segment grid, on the track's downbeats.

The ranking scores windows that start on segment boundaries (10 s apart). For the best tracks this
module scores windows at musical starts — every downbeat when the rhythm analysis measured the track,
every FALLBACK_HOP seconds otherwise — from the stored per-segment embeddings, without the music
model: a window row covering [t, t + L) gets the overlap-weighted mean of the segments it covers, the
way the music model's own segment embedding is the mean of its patches (exact when the sound is steady
within each segment), re-normalised, then scored against the query row as the ranking does (plus the
prompt terms' bias, weighted the same way). Among starts within SECTION_TOLERANCE of the best score a
section start wins: an edit that starts where a section starts sounds intended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from viml.engine.music.rhythm.types import Rhythm

FALLBACK_HOP = 1.0  # seconds between candidate starts for a track without measured downbeats
SECTION_TOLERANCE = 0.01  # score (cosine) a section start may give up against the best start
FINE_CANDIDATES = 50  # tracks whose starts are refined (the ranking's best, before words are fused)


@dataclass(frozen=True)
class Placement:
    start: float  # seconds into the track
    score: float  # the window's score at that start
    bar: int | None  # 1-based bar number of the start (None without downbeats)
    on_downbeat: bool
    section_start: bool
    # Every candidate start and its window's score: the match over the track at this finer resolution.
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)


def candidate_starts(rhythm: Rhythm | None, duration: float, length: float) -> np.ndarray:
    """Starts a window of `length` seconds may take: the downbeats (or a FALLBACK_HOP grid) that leave
    room for it, and 0 when nothing does."""
    latest = max(0.0, duration - length)
    if rhythm is not None and len(rhythm.beats.downbeats):
        starts = rhythm.beats.downbeats
    else:
        starts = np.arange(0.0, latest + 1e-9, FALLBACK_HOP)
    starts = starts[starts <= latest + 1e-6]
    return starts if len(starts) else np.zeros(1)


def window_weights(
    segment_starts: np.ndarray, segment_ends: np.ndarray, window_starts: np.ndarray, seconds: float
) -> np.ndarray:
    """[W, S] share of each window [t, t + seconds) that segment s covers (rows sum to <= 1)."""
    lo = np.maximum(window_starts[:, None], segment_starts[None, :])
    hi = np.minimum(window_starts[:, None] + seconds, segment_ends[None, :])
    return np.clip(hi - lo, 0.0, None) / seconds


def fine_scores(
    embeddings: np.ndarray,
    segment_starts: np.ndarray,
    segment_ends: np.ndarray,
    query: np.ndarray,
    starts: np.ndarray,
    segment_seconds: float,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Score of the window at each start: mean over query rows k of the row's score against the music
    in [start + k * segment_seconds, start + (k + 1) * segment_seconds)."""
    query = np.atleast_2d(query).astype(np.float64)
    k = query.shape[0]
    music = np.asarray(embeddings, np.float64)
    # Everything through the segments' own products: a mixed row's dot with q is w . (M q) and its
    # squared norm w' (M M') w, so the cost is [starts x segments], never [starts x dimensions].
    gram = music @ music.T
    projected = music @ query.T  # [S, K]
    total = np.zeros(len(starts), np.float64)
    for row in range(k):
        weights = window_weights(
            segment_starts, segment_ends, starts + row * segment_seconds, segment_seconds
        )
        norms = np.sqrt(np.maximum(np.einsum("ws,ws->w", weights @ gram, weights), 0.0))
        similarity = np.where(norms > 0, weights @ projected[:, row] / np.maximum(norms, 1e-12), 0.0)
        if bias is not None:
            similarity += weights @ bias / np.maximum(weights.sum(axis=1), 1e-12)
        total += similarity
    return total / k


def place(
    embeddings: np.ndarray,
    segment_starts: np.ndarray,
    segment_ends: np.ndarray,
    query: np.ndarray,
    segment_seconds: float,
    rhythm: Rhythm | None,
    duration: float,
    bias: np.ndarray | None = None,
) -> Placement:
    """The best musical start of one track for the query (see the module's docstring)."""
    length = segment_seconds * np.atleast_2d(query).shape[0]
    starts = candidate_starts(rhythm, duration, length)
    scores = fine_scores(embeddings, segment_starts, segment_ends, query, starts, segment_seconds, bias)
    best = int(np.argmax(scores))
    sections = rhythm.sections if rhythm is not None else np.zeros(0)
    is_section = (
        np.isin(np.round(starts, 3), np.round(sections, 3)) if len(sections) else np.zeros(len(starts), bool)
    )
    near_best = np.flatnonzero(is_section & (scores >= scores[best] - SECTION_TOLERANCE))
    if len(near_best):
        best = int(near_best[np.argmax(scores[near_best])])
    start = float(starts[best])
    downbeats = rhythm.beats.downbeats if rhythm is not None else np.zeros(0)
    on_downbeat = bool(len(downbeats)) and bool(np.min(np.abs(downbeats - start)) < 1e-6)
    bar = int(np.searchsorted(downbeats, start + 1e-6)) if len(downbeats) else None
    return Placement(start, float(scores[best]), bar, on_downbeat, bool(is_section[best]), starts, scores)
