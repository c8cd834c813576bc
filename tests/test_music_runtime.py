"""MusicModel on awkward input: segment alignment, sample rates, lengths, silence, bad arrays, missing models."""

from __future__ import annotations

import numpy as np
import pytest
from music_helpers import converted_models
from viml.demo.reference_audio import render_piece
from viml.engine.music.frontend import patch_starts, repeat_pad
from viml.engine.music.runtime import ModelsMissingError, MusicModel
from viml.engine.tags import tags_above


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return MusicModel.load(converted_models(tmp_path_factory), device="cpu")


def test_missing_models_name_the_command():
    with pytest.raises(ModelsMissingError, match="viml convert-musicnn"):
        MusicModel.load()


def test_segments_follow_the_shared_rules(model):
    music = model.analyze(render_piece("techno", 25.0))
    np.testing.assert_allclose(music.starts, [0, 10, 20])
    np.testing.assert_allclose(music.ends, [10, 20, 25])
    assert music.embeddings.shape == (3, 400) and music.embeddings.dtype == np.float32
    for vocabulary, probabilities in music.tag_probabilities.items():
        assert probabilities.shape == (3, 50)
        assert ((probabilities >= 0) & (probabilities <= 1)).all(), vocabulary
    assert [tag for _, tag, _ in tags_above(music.tag_probabilities, music.tag_names, segment=2)][:1] == [
        "techno"
    ]


@pytest.mark.parametrize("sample_rate", [8000, 22050, 44100, 96000])
def test_any_sample_rate_is_resampled(model, sample_rate):
    music = model.analyze(render_piece("piano", 6.0, sample_rate), sample_rate)
    assert music.ends[-1] == pytest.approx(6.0)
    assert "piano" in {tag for _, tag, _ in tags_above(music.tag_probabilities, music.tag_names)}


@pytest.mark.parametrize("seconds", [0.05, 1.0, 3.5])
def test_very_short_audio_gives_one_segment(model, seconds):
    music = model.analyze(render_piece("piano", 4.0)[: int(seconds * 16000)])
    assert len(music.starts) == 1 and np.isfinite(music.embeddings).all()


def test_silence_is_analysed_without_nan(model):
    music = model.analyze(np.zeros(16000 * 4, np.float32))
    assert np.isfinite(music.embeddings).all()


@pytest.mark.parametrize(
    ("audio", "message"),
    [(np.zeros((2, 1000), np.float32), "mono"), (np.zeros(0, np.float32), "empty"),
     (np.full(1000, np.nan, np.float32), "NaN")],
)  # fmt: skip
def test_bad_arrays_raise_clear_errors(model, audio, message):
    with pytest.raises(ValueError, match=message):
        model.analyze(audio)


@pytest.mark.slow
def test_long_audio(model):
    audio = np.tile(render_piece("rock", 30.0), 20)  # 10 minutes
    music = model.analyze(audio)
    assert len(music.starts) == 60 and np.isfinite(music.embeddings).all()


def test_patch_layout():
    assert patch_starts(625, 187) == [0, 219, 438]  # 10 s segment: 3 patches spread over it
    assert patch_starts(100, 187) == [0]
    assert patch_starts(200, 187) == [6]
    short = np.arange(10, dtype=np.float32).reshape(5, 2)
    padded = repeat_pad(short, 12)
    assert padded.shape == (12, 2) and (padded[5] == short[0]).all()
