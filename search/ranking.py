"""Ranking every catalogued track for a query, with the best offset of each (vectorised, float32).

Semantics: the query Q [K, D] has one L2-normalised row per clip segment (K = 1 for a prompt alone);
a track's segments M [S, D] are normalised. The window at offset o scores mean_k Q_k · M_{o+k} for
o = 0..S-K (a track shorter than the clip, S < K, gets one window over the segments it has). A track's
score is its best window; the best offset is where it is; the match curve is the score at every offset.

All tracks are scored at once: one matmul over the stacked segment matrix gives every (segment, query
row) similarity; then K shifted adds along the diagonal give every window sum of the whole matrix, and
`np.maximum.reduceat` takes each track's best window. Cost is one pass over the matrix plus O(N·K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from viml.search.defaults import POOLINGS


@dataclass
class WindowScores:
    scores: np.ndarray  # float32 [N] window score at each global start row (valid where a window starts)
    offsets: np.ndarray  # int64 [T] number of windows of each track (>= 1)
    best: np.ndarray  # float32 [T] best window score of each track
    best_offset: np.ndarray  # int64 [T] its offset, in segments from the track start


def window_scores(
    embeddings: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    query: np.ndarray,
    bias: np.ndarray | None = None,
) -> WindowScores:
    """Score every window of every track; `embeddings` rows of track t are starts[t]:starts[t]+counts[t].

    `bias` [N] (optional) is added to every segment's similarity before windows are averaged (the
    prompt terms' tag score, search/prompt_terms.py).
    """
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    return windows_of(_similarities(embeddings, query), starts, counts, bias)


def windows_of(
    similarities: np.ndarray, starts: np.ndarray, counts: np.ndarray, bias: np.ndarray | None = None
) -> WindowScores:
    """`window_scores` from the similarities [N, K] of every segment with every query row (changed in
    place by `bias`); search/candidates.py computes them for a few tracks without copying their rows."""
    total, k = similarities.shape
    tracks = len(counts)
    if tracks == 0:
        empty = np.zeros(0, np.float32)
        return WindowScores(empty, np.zeros(0, np.int64), empty, np.zeros(0, np.int64))
    if bias is not None:
        similarities += np.asarray(bias, dtype=np.float32)[:, None]
    if k == 1:
        windows = similarities[:, 0].copy()
    else:
        # windows[n] = mean_k sim[n + k, k]; rows past a track's end are only read for offsets never used.
        windows = np.zeros(total, np.float32)
        for j in range(k):
            windows[: total - j] += similarities[j:, j]
        windows /= k
        short = np.flatnonzero(counts < k)
        if len(short):
            # Tracks shorter than the clip: one window over the pairs that exist.
            sums = np.zeros(len(short), np.float32)
            for j in range(k):
                has = counts[short] > j
                sums[has] += similarities[starts[short][has] + j, j]
            windows[starts[short]] = sums / counts[short]
    offsets = np.maximum(counts - k + 1, 1).astype(np.int64)
    group_starts = np.concatenate([[0], np.cumsum(offsets)[:-1]]).astype(np.int64)
    rows = np.repeat(starts - group_starts, offsets) + np.arange(int(offsets.sum()), dtype=np.int64)
    valid = windows[rows]
    best = np.maximum.reduceat(valid, group_starts)
    # First position of each group's maximum: the earliest best offset wins ties.
    group_of = np.repeat(np.arange(tracks), offsets)
    hits = np.flatnonzero(valid == best[group_of])
    first = hits[np.concatenate([[True], group_of[hits][1:] != group_of[hits][:-1]])]
    return WindowScores(windows, offsets, best, first - group_starts)


# Rows per matmul block. Measured on 2 loaded cores: one [N, 512] @ [512, K] call for K > 1 took 3-4x
# longer than 256-row blocks (and large blocks stalled badly when BLAS threads competed for the cores).
_BLOCK_ROWS = 256


def _similarities(embeddings: np.ndarray, query: np.ndarray) -> np.ndarray:
    transposed = np.ascontiguousarray(query.T)
    out = np.empty((embeddings.shape[0], query.shape[0]), np.float32)
    for first in range(0, embeddings.shape[0], _BLOCK_ROWS):
        np.matmul(embeddings[first : first + _BLOCK_ROWS], transposed, out=out[first : first + _BLOCK_ROWS])
    return out


def top_tracks(best: np.ndarray, keep: np.ndarray | None, count: int) -> np.ndarray:
    """Indices of the `count` best tracks among those where keep is True, best first."""
    scores = best if keep is None else np.where(keep, best, -np.inf)
    candidates = np.flatnonzero(np.isfinite(scores))
    if len(candidates) == 0:
        return candidates
    count = min(count, len(candidates))
    part = candidates[np.argpartition(-scores[candidates], count - 1)[:count]]
    return part[np.argsort(-scores[part], kind="stable")]


def brute_force(embeddings: np.ndarray, starts: np.ndarray, counts: np.ndarray, query: np.ndarray):
    """Reference implementation, track by track and window by window (tests and the benchmark baseline)."""
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    k = query.shape[0]
    best, offsets, curves = [], [], []
    for start, count in zip(starts, counts, strict=True):
        track = embeddings[start : start + count]
        if count < k:
            curve = np.array([np.mean(np.sum(track * query[:count], axis=1))], np.float32)
        else:
            curve = np.array(
                [np.mean(np.sum(track[o : o + k] * query, axis=1)) for o in range(count - k + 1)], np.float32
            )
        best.append(curve.max())
        offsets.append(int(curve.argmax()))
        curves.append(curve)
    return np.array(best, np.float32), np.array(offsets), curves


def pooled(scores: WindowScores, starts: np.ndarray, pooling: str = "best") -> np.ndarray:
    """A track score from its window scores: the best window (the default), the mean over every window,
    the mean of the best three, or the average of best and mean. The best offset stays the best window's
    whatever the pooling (it says where the music fits)."""
    if pooling == "best" or len(scores.best) == 0:
        return scores.best
    offsets = scores.offsets
    group_starts = np.concatenate([[0], np.cumsum(offsets)[:-1]]).astype(np.int64)
    rows = np.repeat(starts - group_starts, offsets) + np.arange(int(offsets.sum()), dtype=np.int64)
    values = scores.scores[rows].astype(np.float64)
    mean = np.add.reduceat(values, group_starts) / offsets
    if pooling == "mean":
        return mean.astype(np.float32)
    if pooling == "best+mean":
        return (0.5 * (scores.best + mean)).astype(np.float32)
    if pooling == "top3":
        group = np.repeat(np.arange(len(offsets)), offsets)
        order = np.lexsort((-values, group))  # by track, best first
        position = np.arange(len(order)) - np.repeat(group_starts, offsets)
        top = position < 3
        chosen_group = group[order][top]
        sums = np.bincount(chosen_group, weights=values[order][top], minlength=len(offsets))
        return (sums / np.minimum(offsets, 3)).astype(np.float32)
    raise ValueError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
