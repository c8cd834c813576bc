"""A zero-shot bundle built from a tiny random CLIP + the real MiniLM, then used without torch.

Checks end to end: parity recorded at export, the run time's tokenisers and graphs reproduce the torch
encoders, int8 stays close, queries from a real (generated) video mix picture and prompt as specified,
clip embeddings are cached, and a bundle without CLIP says clearly it cannot read pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_factory import write_video
from viml.core.errors import UserFacingError
from viml.engine.bundles.manifest import BundleError
from viml.engine.music.types import MusicSegments
from viml.engine.runtime import NoPicturesError, open_bundle
from viml.engine.runtime.providers import create_session, requested_providers
from viml.engine.vectors import normalize_rows
from viml.search import SuggestRequest
from viml.search.query import encode_query
from viml.search.spaces import retrieval_space

pytest.importorskip("open_clip")
CLIP = "viml-tiny:random"
PROMPTS = ["slow sad piano", "Épée & naïve — “upbeat” drums!!", "a car chase at night " * 20]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from viml.export_onnx.build import build_bundle

    root = tmp_path_factory.mktemp("bundles")
    return build_bundle("zs", clip=CLIP, include_music=False, output_dir=root)


@pytest.fixture(scope="module")
def prompt_only(tmp_path_factory) -> Path:
    from viml.export_onnx.build import build_bundle

    return build_bundle("text", include_music=False, output_dir=tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def torch_clip():
    from viml.export_onnx.clip import load_clip

    return load_clip(CLIP)


def test_manifest_records_parity_and_kind(built: Path) -> None:
    bundle = open_bundle(built, shared=False)
    assert bundle.kind == "zero-shot" and bundle.reads_pictures
    assert bundle.manifest["text_input"] == "clip_text_encoder"
    for role in ("frame_encoder", "clip_text_encoder", "text_encoder"):
        parity = bundle.models[role]["parity"]
        assert parity["max_abs_diff"] <= parity["tolerance"]
    assert bundle.models["frame_encoder"]["inputs"][0]["shape"][0] == "batch"
    assert bundle.models["frame_encoder"]["variants"]["int8"]["cosine_vs_float_min"] >= 0.99
    assert (built / "tokenizers" / "bpe_simple_vocab_16e6.txt.gz").is_file()


def test_prompts_match_torch_encoders(built: Path, torch_clip) -> None:
    from viml.training.encoders.text import MiniLMTextEncoder

    bundle = open_bundle(built, provider="cpu", shared=False)
    np.testing.assert_allclose(
        bundle.prompt_encoder.encode_texts(PROMPTS), torch_clip.encode_texts(PROMPTS), atol=1e-5
    )
    minilm = bundle.text_encoder("text_encoder").encode_texts(PROMPTS)
    np.testing.assert_allclose(minilm, MiniLMTextEncoder().encode_texts(PROMPTS), atol=1e-5)


def test_frames_match_torch_and_int8_stays_close(built: Path, torch_clip) -> None:
    from viml.engine.preprocess import preprocess_frames

    rng = np.random.default_rng(1)
    size = torch_clip.preprocessing.image_size
    frames = rng.integers(0, 256, (5, size, size + 20, 3), dtype=np.uint8)
    expected = torch_clip.encode_images(
        preprocess_frames(frames, size, torch_clip.preprocessing.mean, torch_clip.preprocessing.std)
    )
    exact = open_bundle(built, precision="float", reuse_threshold=0.0, shared=False).frame_encoder
    np.testing.assert_allclose(exact.encode_frames(frames), expected, atol=1e-5)
    quantised = open_bundle(built, precision="int8", reuse_threshold=0.0, shared=False).frame_encoder
    assert "int8" in quantised.session._model_path
    cosine = np.sum(quantised.encode_frames(frames) * expected, axis=1)
    assert cosine.min() >= 0.99


def test_near_identical_frames_reuse_an_embedding(built: Path) -> None:
    encoder = open_bundle(built, reuse_threshold=0.01, shared=False).frame_encoder
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    other = 255 - base
    frames = np.stack([base, base, other, other, base])
    out = encoder.encode_frames(frames)
    assert encoder.last_reused == 2  # frames 1 and 3 repeat their predecessor; frame 4 differs from 3
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_allclose(out[4], out[0], atol=1e-6)
    assert not np.allclose(out[2], out[0])


def test_query_mixes_picture_and_prompt_and_caches_clip(built: Path, tmp_path: Path, monkeypatch) -> None:
    video = write_video(tmp_path / "clip.mp4", seconds=16.0, fps=12.0, size=(96, 64))
    bundle = open_bundle(built, provider="cpu", shared=False)
    frames = bundle.clips.clip_embeddings(str(video), 0.0, None)
    assert [len(f) for f in frames] == [60, 36]  # 10 s + 6 s at 6 fps
    picture = normalize_rows(np.stack([normalize_rows(f).mean(0) for f in frames]))
    text = bundle.prompt_encoder.encode_texts(["slow sad piano"])[0]
    np.testing.assert_allclose(bundle.clips.prompt_embedding("slow sad piano"), text, atol=1e-6)

    query = encode_query(bundle, str(video), 0.0, None, "slow sad piano", 0.3)
    np.testing.assert_allclose(query, normalize_rows(0.7 * picture + 0.3 * text), atol=1e-6)
    np.testing.assert_allclose(encode_query(bundle, str(video), 0.0, None, None, 0.3), picture, atol=1e-6)
    np.testing.assert_allclose(
        encode_query(bundle, None, 0.0, None, "slow sad piano", 0.3), text[None], atol=1e-6
    )

    # A second prompt on the same clip, even from a fresh bundle (disk cache), decodes nothing.
    import viml.engine.runtime.pipeline as pipeline

    monkeypatch.setattr(pipeline, "encode_clip_segments", lambda *a, **k: pytest.fail("clip decoded again"))
    fresh = open_bundle(built, provider="cpu", shared=False)
    assert encode_query(fresh, str(video), 0.0, None, "fast drums", 0.5).shape == picture.shape
    # The influence range is checked where every surface builds its request.
    with pytest.raises(UserFacingError, match="influence"):
        SuggestRequest(video=str(video), prompt="x", influence=1.5)
    with pytest.raises(UserFacingError, match="cannot read the video"):
        encode_query(fresh, str(tmp_path / "missing.mp4"), 0.0, None, "x", 0.5)


def test_zero_shot_space_embeds_tag_descriptions(built: Path) -> None:
    bundle = open_bundle(built, shared=False)
    segments = MusicSegments(
        starts=np.array([0.0, 10.0]),
        ends=np.array([10.0, 20.0]),
        embeddings=np.zeros((2, 4), np.float32),
        tag_probabilities={"MTT": np.array([[0.9, 0.1], [0.1, 0.8]], np.float32)},
        tag_names={"MTT": ["piano", "drums"]},
    )
    space = retrieval_space(bundle)
    vectors = space.embed_segments(segments)
    expected = bundle.prompt_encoder.encode_texts(["music with piano", "music with drums"])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert space.id == retrieval_space(open_bundle(built, shared=False)).id


def test_bundle_without_clip_answers_prompts_only(prompt_only: Path, tmp_path: Path) -> None:
    bundle = open_bundle(prompt_only, shared=False)
    assert bundle.manifest["text_input"] == "text_encoder" and not bundle.reads_pictures
    query = encode_query(bundle, None, 0.0, None, "calm acoustic guitar", 0.5)
    assert query.shape == (1, 384)
    video = write_video(tmp_path / "clip.mp4", seconds=2.0)
    with pytest.raises(NoPicturesError, match="--clip ViT-B-32:openai"):
        encode_query(bundle, str(video), 0.0, None, "x", 0.5)


def test_tampered_bundle_refuses_to_load(prompt_only: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(prompt_only, copy)
    with open(copy / "tokenizers" / "minilm_tokenizer.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match="minilm_tokenizer.json"):
        open_bundle(copy, shared=False)


def test_parity_failure_writes_no_bundle(tmp_path: Path) -> None:
    from viml.export_onnx.build import build_bundle
    from viml.export_onnx.graphs import ParityError

    with pytest.raises(ParityError, match="refusing|tolerance"):
        build_bundle("bad", include_music=False, tolerance=-1.0, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_providers(built: Path) -> None:
    assert requested_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(UserFacingError, match="unknown provider"):
        requested_providers("tpu")
    session = create_session(built / "frame_encoder.onnx", "auto")
    assert session.get_providers()[-1] == "CPUExecutionProvider"
