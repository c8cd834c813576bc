"""The demo world's music: composition follows the hidden attributes, rendering is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from viml.demo.world.attributes import PieceAttributes, ground_truth_tags, sample_attributes
from viml.demo.world.compose import compose
from viml.demo.world.render import render_piece_audio
from viml.demo.world.styles import STYLE_NAMES, STYLES

SR = 16000


def _attributes(style: str = "rock", tempo: float = 140.0, energy: float = 0.7, mode: str = "major"):
    return PieceAttributes(style, tempo, mode, 0, energy, 0.1, "geometric", 2)


def test_render_is_deterministic_and_seed_dependent():
    a = render_piece_audio("piano", seconds=4, seed=7, sample_rate=SR)
    b = render_piece_audio("piano", seconds=4, seed=7, sample_rate=SR)
    c = render_piece_audio("piano", seconds=4, seed=8, sample_rate=SR)
    assert a.dtype == np.float32 and a.shape == (4 * SR,)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert float(np.sqrt(np.mean(a**2))) > 0.01 and float(np.abs(a).max()) <= 1.0


def test_stereo_and_full_attributes():
    audio = render_piece_audio(_attributes(), seconds=3, seed=1, sample_rate=SR, mono=False)
    assert audio.shape == (3 * SR, 2)
    # The fade-out leaves the last samples near silence.
    assert float(np.abs(audio[-20:]).max()) < 0.01


def test_styles_use_their_own_general_midi_programs():
    rng = np.random.default_rng(0)
    programs = {}
    for style in STYLE_NAMES:
        midi = compose(sample_attributes(rng, style=style), 8.0, np.random.default_rng(1))
        programs[style] = frozenset((i.program, i.is_drum) for i in midi.instruments)
        spec = STYLES[style]
        assert (spec.harmony, False) in programs[style]
        assert any(i.notes for i in midi.instruments)
    assert len(set(programs.values())) == len(STYLE_NAMES)
    assert not any(drum for _, drum in programs["piano"])
    assert (16, True) in programs["rock"]


def test_tempo_sets_note_density():
    slow = compose(_attributes(tempo=80.0), 16.0, np.random.default_rng(3))
    fast = compose(_attributes(tempo=160.0), 16.0, np.random.default_rng(3))

    def onsets(midi):
        return sum(1 for i in midi.instruments for n in i.notes if n.start < 15.0)

    assert onsets(fast) > 1.6 * onsets(slow)


def test_ground_truth_tags_follow_attributes():
    tags = ground_truth_tags(_attributes(style="electronic", tempo=130, energy=0.9, mode="minor"))
    assert {"electronic", "synth", "sad", "energetic", "fast"} <= set(tags)
    calm = ground_truth_tags(_attributes(style="piano", tempo=70, energy=0.2))
    assert {"piano", "happy", "calm", "slow"} <= set(calm)


def test_bad_attributes_are_rejected():
    with pytest.raises(ValueError, match="unknown style"):
        render_piece_audio("polka", seconds=2)
    with pytest.raises(ValueError, match="energy"):
        _attributes(energy=1.5)
    with pytest.raises(ValueError, match="seconds"):
        render_piece_audio("piano", seconds=0)
