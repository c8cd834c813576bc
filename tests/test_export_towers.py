"""A trained (here: randomly initialised) ViML checkpoint exported into a bundle: towers match torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from viml.engine.music.types import MusicSegments
from viml.engine.runtime import open_bundle
from viml.search.query import trained_query
from viml.search.spaces import retrieval_space

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, object]:
    from viml.export_onnx.build import build_bundle
    from viml.training.model import ViML, ViMLConfig, save_checkpoint

    root = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    config = ViMLConfig(
        video_dim=128,
        text_dim=128,
        music_dim=12,
        width=32,
        heads=2,
        layers=1,
        fusion_layers=1,
        embed_dim=16,
        max_segments=8,
    )
    model = ViML(config).eval()
    save_checkpoint(model, root / "model.safetensors", {"trained_on": "unit-test noise"})
    folder = build_bundle(
        "demo",
        clip="viml-tiny:random",
        checkpoint=root / "model.safetensors",
        kind="demo",
        include_music=False,
        quantize=False,
        output_dir=root,
    )
    return folder, model


def test_manifest_describes_towers(trained) -> None:
    folder, _ = trained
    bundle = open_bundle(folder, shared=False)
    assert bundle.kind == "demo" and "ViML towers: unit-test noise" in bundle.manifest["trained_on"]
    assert bundle.manifest["text_input"] == "clip_text_encoder" and bundle.manifest["temperature"] == 0.03
    query = bundle.models["query_tower"]
    assert [i["shape"][:2] for i in query["inputs"][:2]] == [["batch", "segments"], ["batch", "segments"]]
    assert query["parity"]["max_abs_diff"] <= query["parity"]["tolerance"]


def test_music_space_matches_torch_beyond_max_segments(trained) -> None:
    folder, model = trained
    rng = np.random.default_rng(0)
    features = rng.standard_normal((11, 12)).astype(np.float32)  # 11 > max_segments 8: two windows
    segments = MusicSegments(np.arange(11.0) * 10, np.arange(1.0, 12.0) * 10, features, {}, {})
    space = retrieval_space(open_bundle(folder, shared=False))
    assert space.id.startswith("viml-")
    with torch.no_grad():
        first = model.music_tower(torch.from_numpy(features[None, :8]), torch.ones(1, 8, dtype=torch.bool))[
            0
        ][0]
        second = model.music_tower(torch.from_numpy(features[None, 8:]), torch.ones(1, 3, dtype=torch.bool))[
            0
        ][0]
    np.testing.assert_allclose(space.embed_segments(segments), torch.cat([first, second]).numpy(), atol=1e-5)


def test_query_influence_mixes_in_query_space(trained) -> None:
    folder, model = trained
    bundle = open_bundle(folder, shared=False)
    towers = bundle.towers
    rng = np.random.default_rng(1)
    frames = [rng.standard_normal((6, 128)).astype(np.float32) for _ in range(3)]
    text = bundle.prompt_encoder.encode_texts(["quiet strings"])[0]
    video = np.stack([(f / np.linalg.norm(f, axis=1, keepdims=True)).mean(0) for f in frames])[None]
    with torch.no_grad():
        args = (torch.from_numpy(video), torch.ones(1, 3, dtype=torch.bool), torch.from_numpy(text[None]))
        null = model.query_tower(*args, torch.tensor([False]))[0][0].numpy()
        with_text = model.query_tower(*args, torch.tensor([True]))[0][0].numpy()
    mixed = 0.5 * null + 0.5 * with_text  # 0.25: halfway from the picture's query to the joint one
    expected = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    np.testing.assert_allclose(trained_query(towers, frames, text, 0.25), expected, atol=1e-5)
    np.testing.assert_allclose(trained_query(towers, frames, None, 0.25), null, atol=1e-5)
    assert trained_query(towers, None, text, 0.5).shape == (1, 16)
