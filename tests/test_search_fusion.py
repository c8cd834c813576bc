"""Calibrated score mixing of the sound and the words (search/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest
from viml.search.fusion import Signal, above_floor, fuse, relative, z_scores


def order(scores: np.ndarray) -> list[int]:
    return list(np.argsort(-scores, kind="stable"))


def test_z_scores_over_the_kept_tracks() -> None:
    z = z_scores(np.array([1.0, 2.0, 3.0, 100.0]), np.array([True, True, True, False]))
    assert z[:3] == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-4) and np.isneginf(z[3])
    assert (z_scores(np.ones(3), np.ones(3, bool)) == 0).all()


def test_a_library_without_words_ranks_exactly_by_sound() -> None:
    sound = np.array([0.3, 0.9, 0.1, 0.5])
    fused = fuse(sound, [Signal("words", np.zeros(4), 4.0), Signal("meaning", np.zeros(4), 2.0)])
    assert order(fused) == order(sound)


def test_words_only_lift_the_tracks_they_speak_for() -> None:
    sound = np.array([0.9, 0.8, 0.7, 0.6])  # by sound: 0, 1, 2, 3
    words = relative(np.array([0.0, 0.0, 0.0, 5.0]), np.array([False, False, False, True]))
    fused = fuse(sound, [Signal("words", words, 3.0)])  # z spans 2.7 here: 3 lifts the last to first
    assert order(fused) == [3, 0, 1, 2]  # the title says it; the others keep their sound order
    weak = fuse(sound, [Signal("words", words, 0.5)])
    assert order(weak)[0] == 0  # a small weight: the sound's favourite stays first


def test_evidence_scales() -> None:
    assert relative(np.array([2.0, 4.0, 0.0]), np.array([True, True, False])).tolist() == [0.5, 1.0, 0.0]
    meaning = above_floor(np.array([0.1, 0.3, 0.65, 1.0]), np.array([True, True, True, False]), 0.3)
    assert meaning.tolist() == pytest.approx([0.0, 0.0, 0.5, 0.0])


def test_sound_weight_zero_and_filters() -> None:
    sound = np.array([0.9, 0.1, 0.5])
    words = np.array([0.0, 1.0, 0.5])
    only_words = fuse(sound, [Signal("words", words)], sound_weight=0.0)
    assert order(only_words) == [1, 2, 0]
    keep = np.array([True, False, True])
    filtered = fuse(sound, [Signal("words", words)], keep=keep)
    assert np.isneginf(filtered[1]) and np.isfinite(filtered[[0, 2]]).all()


def test_request_refuses_nonsense_weights() -> None:
    from viml.core.errors import UserFacingError
    from viml.search import SuggestRequest

    for bad in ({"words_weight": -1}, {"meaning_weight": float("nan")}, {"meaning_floor": 2.0},
                {"sound_weight": 0, "words_weight": 0, "meaning_weight": 0}):  # fmt: skip
        with pytest.raises(UserFacingError):
            SuggestRequest(prompt="piano", **bad)
