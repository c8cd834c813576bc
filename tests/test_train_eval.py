"""Short end-to-end training + evaluation on tiny correlated features; resume is exact."""

from __future__ import annotations

import numpy as np
import torch
from viml.training.evaluate import EvalConfig, evaluate
from viml.training.features import FeatureSet, ItemFeatures
from viml.training.model import ViMLConfig, load_checkpoint
from viml.training.train import TrainConfig, train


def correlated_features(count: int = 48, seed: int = 0) -> FeatureSet:
    """Video and music share a hidden vector per item; the text carries a second, video-invisible part."""
    rng = np.random.default_rng(seed)
    to_video, to_music = rng.normal(size=(3, 12)), rng.normal(size=(9, 10))
    to_text = rng.normal(size=(6, 6))
    items = []
    for index in range(count):
        visible, hidden = rng.normal(size=3), rng.normal(size=6)
        segments = int(rng.integers(2, 5))
        video = (visible @ to_video)[None] + 0.3 * rng.normal(size=(segments, 12))
        music = (np.concatenate([visible, hidden]) @ to_music)[None] + 0.3 * rng.normal(size=(segments, 10))
        text = (hidden @ to_text)[None] + 0.1 * rng.normal(size=(2, 6))
        items.append(
            ItemFeatures(
                id=f"item{index}",
                split="train" if index < count * 3 // 4 else "test",
                video=video.astype(np.float32),
                music=music.astype(np.float32),
                texts={"tags": ["a", "b"]},
                text_embeddings={"tags": text.astype(np.float32)},
            )
        )
    return FeatureSet(items, {"frame_encoder": "synthetic test features"})


def model_config(features: FeatureSet) -> ViMLConfig:
    return ViMLConfig(
        video_dim=features.video_dim,
        text_dim=features.text_dim,
        music_dim=features.music_dim,
        width=32,
        heads=2,
        layers=1,
        fusion_layers=1,
        embed_dim=16,
        dropout=0.0,
        text_dropout=0.5,
        temperature=0.1,
    )


def test_features_round_trip(tmp_path):
    features = correlated_features(6)
    features.save(tmp_path)
    loaded = FeatureSet.load(tmp_path)
    assert [item.id for item in loaded.items] == [item.id for item in features.items]
    np.testing.assert_array_equal(loaded.items[3].music, features.items[3].music)
    np.testing.assert_array_equal(
        loaded.items[3].text_embeddings["tags"], features.items[3].text_embeddings["tags"]
    )
    assert loaded.provenance == features.provenance


def test_training_learns_and_text_helps(tmp_path):
    features = correlated_features(256)
    config = TrainConfig(
        steps=200, batch_size=32, learning_rate=3e-3, warmup_steps=20, window_segments=2, seed=1
    )
    checkpoint = train(features, model_config(features), config, tmp_path, progress=False)
    model, metadata = load_checkpoint(checkpoint)
    assert metadata["step"] == "200"
    test_items = features.split("test")
    without_text = evaluate(model, test_items, EvalConfig(window_segments=2))
    with_text = evaluate(model, test_items, EvalConfig(window_segments=2, text_method="tags"))
    pool = without_text.pool_size
    assert pool == len(test_items)
    chance_median = (pool + 1) / 2
    assert without_text.median_rank < chance_median / 2
    assert with_text.recall[1] > without_text.recall[1] + 10
    assert with_text.median_rank <= without_text.median_rank


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    features = correlated_features(32)
    full = TrainConfig(steps=12, batch_size=8, warmup_steps=2, checkpoint_every=6, seed=3)
    train(features, model_config(features), full, tmp_path / "full", progress=False)
    interrupted = tmp_path / "interrupted"
    train(features, model_config(features), full, interrupted, progress=False, stop_at_step=6)
    train(features, model_config(features), full, interrupted, progress=False)
    expected, _ = load_checkpoint(tmp_path / "full" / "model.safetensors")
    resumed, _ = load_checkpoint(interrupted / "model.safetensors")
    for (name, a), (_, b) in zip(expected.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
