"""Reciprocal-rank fusion of the sound and words signals (search/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest
from viml.search.fusion import Signal, fuse, ranks


def order(scores: np.ndarray) -> list[int]:
    return list(np.argsort(-scores, kind="stable"))


def test_ranks_share_ties_and_skip_tracks_left_out() -> None:
    got = ranks(np.array([0.5, 0.9, 0.5, 0.1]), np.array([True, True, True, False]))
    assert got[:3].tolist() == [2.5, 1.0, 2.5] and np.isinf(got[3])


def test_a_library_without_words_ranks_exactly_by_sound() -> None:
    sound = np.array([0.3, 0.9, 0.1, 0.5])
    nothing = np.zeros(4, bool)
    fused = fuse([Signal("sound", sound), Signal("words", np.zeros(4), 2.0, nothing)])
    assert order(fused) == order(sound)


def test_words_lift_a_matching_track_and_a_track_without_words_keeps_its_sound_rank() -> None:
    sound = np.array([0.9, 0.8, 0.7, 0.6])  # by sound: 0, 1, 2, 3
    words = np.array([0.0, 0.0, 0.0, 5.0])  # only track 3 matches the prompt's words
    has = np.array([True, True, False, True])  # track 2 has no words at all
    fused = fuse([Signal("sound", sound), Signal("words", words, 2.0, has)], k=1.0)
    assert order(fused)[0] == 3  # the words say it is the one
    # Track 2 has no words: its sound rank (3) stands in for its words rank, so it scores as by sound.
    assert fused[2] == pytest.approx(1 / (1.0 + 3))
    # Tracks 0 and 1 have words that did not match: the words push them down, not track 2.
    assert fused[0] < 1 / (1.0 + 1) and fused[1] < 1 / (1.0 + 2)


def test_weights_and_filters() -> None:
    sound = np.array([0.9, 0.1, 0.5])
    words = np.array([0.0, 3.0, 1.0])
    only_words = fuse([Signal("sound", sound, 0.0), Signal("words", words, 1.0)])
    assert order(only_words) == [1, 2, 0]
    keep = np.array([True, False, True])
    filtered = fuse([Signal("sound", sound), Signal("words", words)], keep)
    assert np.isneginf(filtered[1]) and np.isfinite(filtered[[0, 2]]).all()


def test_request_refuses_nonsense_weights() -> None:
    from viml.core.errors import UserFacingError
    from viml.search import SuggestRequest

    for bad in ({"words_weight": -1}, {"meaning_weight": float("nan")}, {"fusion_k": 0},
                {"sound_weight": 0, "words_weight": 0, "meaning_weight": 0}):  # fmt: skip
        with pytest.raises(UserFacingError):
            SuggestRequest(prompt="piano", **bad)
