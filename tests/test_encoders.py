"""Frame and text encoders: tiny random open_clip config, real MiniLM, clear errors for missing weights."""

from __future__ import annotations

import numpy as np
import pytest
from viml.core.errors import WeightsUnavailableError
from viml.training.encoders.clip import ClipEncoder, ClipSpec
from viml.training.encoders.text import MiniLMTextEncoder


def test_spec_parsing():
    spec = ClipSpec.parse("ViT-B-32:openai")
    assert (spec.model_name, spec.pretrained, spec.is_random, spec.is_local_file) == (
        "ViT-B-32",
        "openai",
        False,
        False,
    )
    assert ClipSpec.parse("ViT-B-32:/models/clip.bin").is_local_file
    assert "RANDOMLY INITIALISED" in ClipSpec.parse("viml-tiny:random").describe()
    with pytest.raises(ValueError):
        ClipSpec.parse("ViT-B-32")


def test_tiny_random_tower_encodes_frames_and_texts_reproducibly():
    first = ClipEncoder(ClipSpec.parse("viml-tiny:random"), seed=3)
    size = first.preprocessing.image_size
    pixels = np.random.default_rng(0).normal(size=(5, 3, size, size)).astype(np.float32)
    embeddings = first.encode_images(pixels)
    assert embeddings.shape == (5, first.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    second = ClipEncoder(ClipSpec.parse("viml-tiny:random"), seed=3)
    np.testing.assert_allclose(second.encode_images(pixels), embeddings, atol=1e-6)
    assert first.encode_texts(["a", "b"]).shape == (2, first.embed_dim)


def test_missing_local_checkpoint_says_so():
    with pytest.raises(WeightsUnavailableError, match="not found"):
        ClipEncoder(ClipSpec.parse("ViT-B-32:/nonexistent/open_clip_pytorch_model.bin"))


def test_unreachable_pretrained_weights_explain_how_to_supply_a_file(monkeypatch):
    # No download allowed: fails fast from the local cache instead of retrying the hub for ~47 s.
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-cache")
    with pytest.raises(WeightsUnavailableError) as error:
        ClipEncoder(ClipSpec.parse("ViT-B-32:openai"))
    assert "/path/to/open_clip_pytorch_model.bin" in str(error.value)


def test_minilm_is_a_real_sentence_encoder():
    encoder = MiniLMTextEncoder()
    sad, melancholic, rock = encoder.encode_texts(
        ["sad piano", "melancholic piano ballad", "loud rock guitar"]
    )
    assert sad.shape == (384,)
    assert sad @ melancholic > sad @ rock + 0.1
