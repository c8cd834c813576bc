"""Fusing the sound and the words into one track order: calibrated score mixing.

    fused(t) = w_sound · z(sound(t)) + Σ_s w_s · e_s(t)

- z(sound) is the sound score (the bundle's window score plus prompt terms, pooled per track) as a
  z-score over the tracks considered: the sound's unit is one standard deviation of this library's scores
  for this prompt, whatever the bundle's cosine scale.
- e_s(t) in [0, 1] is the evidence of word signal s for track t, 0 where it has none: full-text matching
  divides each track's BM25 by the best match's (the best matching track gets 1), meaning maps the cosine
  of the prompt with the track's words from the floor (0) to 1.
So a weight of 2 on the words says "the best word match is worth two standard deviations of sound".
Words only ever lift the tracks they speak for: a library without words, or whose words say nothing about
the prompt, ranks exactly as by sound alone. Why scores and not ranks (reciprocal-rank fusion was tried
first): with ranks, a track whose title says exactly what the prompt asks could not pass the sound's
favourite, since that one still took the next rank in every word list; the magnitudes carry that
difference. The weights are chosen on one labelled set and reported on another (bench/search.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ties (and a sound weight of 0) are broken by the sound, this much of it.
_TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Signal:
    name: str
    evidence: np.ndarray  # float [T] in [0, 1]; 0 where the signal says nothing about the track
    weight: float = 1.0


def z_scores(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(score - mean) / std over the kept tracks (0 where all are equal); others: -inf."""
    out = np.full(len(scores), -np.inf)
    values = np.asarray(scores, np.float64)[keep]
    if values.size:
        spread = values.std()
        out[keep] = (values - values.mean()) / spread if spread > 0 else 0.0
    return out


def fuse(
    sound: np.ndarray, signals: list[Signal], sound_weight: float = 1.0, keep: np.ndarray | None = None
) -> np.ndarray:
    """Fused scores [T] (the module docstring); tracks outside `keep` get -inf."""
    keep = np.ones(len(sound), bool) if keep is None else keep
    z = z_scores(sound, keep)
    fused = (sound_weight + _TIE_BREAK) * z
    for signal in signals:
        if signal.weight > 0:
            fused = fused + signal.weight * np.where(keep, signal.evidence, 0.0)
    fused[~keep] = -np.inf
    return fused


def relative(scores: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Scores divided by the best one among `present` (0 elsewhere): the best gets 1."""
    out = np.zeros(len(scores))
    if present.any():
        best = float(np.max(scores[present]))
        if best > 0:
            out[present] = np.clip(scores[present] / best, 0.0, 1.0)
    return out


def above_floor(cosines: np.ndarray, present: np.ndarray, floor: float) -> np.ndarray:
    """Cosines mapped from `floor` (0) to 1 (1), 0 below the floor and where not `present`."""
    scaled = np.clip((np.asarray(cosines, np.float64) - floor) / max(1.0 - floor, 1e-9), 0.0, 1.0)
    return np.where(present, scaled, 0.0)
