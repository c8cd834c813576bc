"""Fusing ranked signals into one track order: weighted reciprocal-rank fusion (RRF).

Each signal gives every track a score (higher is better) or nothing (`present` False: the track has no
words, say). A track's fused score is

    fused(t) = Σ_s w_s / (k + rank_s(t))  /  Σ_s w_s

where rank_s(t) is the track's 1-based rank in signal s among the tracks considered (ties share their
mean rank). A track a signal knows nothing about takes its rank in the first signal (the sound) for that
signal instead, so a library without words ranks exactly as by sound alone, and a track without words is
never pushed down for lacking them. A track with words that do not match ranks last in that signal: the
words said no. Why RRF: the signals live on unrelated scales (cosines, BM25, tag biases); ranks need no
calibration, and k (the smoothing) is the one constant, chosen on one labelled set and reported on another
(bench/zero_shot.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from viml.search.defaults import FUSION_K as DEFAULT_K


@dataclass(frozen=True)
class Signal:
    name: str
    scores: np.ndarray  # float [T], higher is better
    weight: float = 1.0
    present: np.ndarray | None = None  # bool [T]; None: every track has this signal


def ranks(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """1-based ranks (ties share their mean rank) of `scores` among the tracks where `keep`; others: inf."""
    out = np.full(len(scores), np.inf)
    chosen = np.flatnonzero(keep)
    if len(chosen) == 0:
        return out
    values = -np.asarray(scores, np.float64)[chosen]
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Mean rank of each run of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(sorted_values)]
    mean_rank = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    out[chosen[order]] = mean_rank
    return out


def fuse(signals: list[Signal], keep: np.ndarray | None = None, k: float = DEFAULT_K) -> np.ndarray:
    """Fused scores [T] (see the module docstring); the first signal is the base every track has."""
    base = signals[0]
    count = len(base.scores)
    keep = np.ones(count, bool) if keep is None else keep
    base_ranks = ranks(base.scores, keep)
    total = np.zeros(count)
    weights = sum(s.weight for s in signals if s.weight > 0)
    for signal in signals:
        if signal.weight <= 0:
            continue
        present = np.ones(count, bool) if signal.present is None else signal.present
        own = ranks(signal.scores, keep & present)
        # Tracks the signal knows nothing about: their sound rank stands in (no penalty for no words).
        signal_ranks = np.where(present, own, base_ranks)
        total += signal.weight / (k + signal_ranks)
    fused = total / weights
    fused[~keep] = -np.inf
    return fused
