"""The converted musicnn models against the ORIGINAL TensorFlow model's stored outputs on rendered music."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from music_helpers import converted_models
from viml.demo.reference_audio import PIECES, render_piece
from viml.engine.music.frontend import log_mel_spectrogram, mel_filterbank
from viml.engine.music.runtime import MusicModel
from viml.engine.tags import tags_above

REFERENCE = np.load(Path(__file__).parent / "data" / "musicnn_reference.npz", allow_pickle=False)
MODELS = {"MTT": "MTT_musicnn", "MSD": "MSD_musicnn"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_models(tmp_path_factory)


@pytest.fixture(scope="module")
def audio():
    rendered = {piece: render_piece(piece) for piece in PIECES}
    for piece, signal in rendered.items():
        stored = str(REFERENCE[f"{piece}/audio_sha256"])
        if hashlib.sha256(signal.tobytes()).hexdigest() != stored:
            pytest.fail(f"rendered {piece} differs from the reference audio: rerun make_musicnn_reference.py")
    return rendered


def _patches(features: np.ndarray) -> np.ndarray:
    return np.stack([features[s : s + 187] for s in range(0, len(features) - 186, 187)])


def test_front_end_matches_librosa(audio):
    for piece, signal in audio.items():
        features = log_mel_spectrogram(signal)
        np.testing.assert_allclose(features[:6], REFERENCE[f"{piece}/mel_head"], atol=1e-5)
        np.testing.assert_allclose(features[300:306], REFERENCE[f"{piece}/mel_middle"], atol=1e-5)


def test_torch_front_end_matches_numpy(audio):
    torch = pytest.importorskip("torch")
    from viml.training.frontend_torch import log_mel_spectrogram as torch_log_mel

    signal = audio["rock"][:48000]
    expected = log_mel_spectrogram(signal)
    np.testing.assert_allclose(torch_log_mel(torch.from_numpy(signal)).numpy(), expected, atol=2e-5)


def test_mel_bank_is_slaney_normalised():
    bank = mel_filterbank()
    assert bank.shape == (96, 257)
    assert (bank >= 0).all() and (bank.sum(axis=1) > 0).all()


@pytest.mark.parametrize("fused", [True, False], ids=["fused graph (default)", "two sessions"])
def test_onnx_matches_tensorflow(folder, audio, fused):
    model = MusicModel.load(folder, device="cpu", fused=fused)
    assert (model.fused_session is not None) == fused
    for piece, signal in audio.items():
        outputs = model.run_patches(_patches(log_mel_spectrogram(signal)))
        for vocabulary, name in MODELS.items():
            probabilities, penultimate = outputs[vocabulary]
            taggram = REFERENCE[f"{piece}/{name}/taggram"]
            np.testing.assert_allclose(probabilities, taggram, atol=2e-5, err_msg=f"{piece} {name}")
            np.testing.assert_allclose(penultimate, REFERENCE[f"{piece}/{name}/penultimate"], atol=1e-4)
            assert ((probabilities > 0.3) == (taggram > 0.3)).all()


def test_fused_graph_matches_the_separate_models(folder, audio):
    fused = MusicModel.load(folder, device="cpu")
    separate = MusicModel.load(folder, device="cpu", fused=False)
    signal = np.concatenate([audio["strings"], audio["techno"]])
    a, b = fused.analyze(signal), separate.analyze(signal)
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-4)
    for vocabulary in ("MTT", "MSD"):
        np.testing.assert_allclose(
            a.tag_probabilities[vocabulary], b.tag_probabilities[vocabulary], atol=1e-5
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["fused"]["max_abs_difference_vs_separate"] < 1e-4


def test_torch_matches_tensorflow(audio):
    torch = pytest.importorskip("torch")
    from viml.export_onnx.musicnn import find_musicnn, load_checkpoint
    from viml.export_onnx.musicnn_torch import from_tf_tensors

    model = from_tf_tensors(load_checkpoint(find_musicnn(download=False), "MSD_musicnn"))
    patches = torch.from_numpy(_patches(log_mel_spectrogram(audio["techno"])))
    with torch.no_grad():
        probabilities, penultimate = model(patches)
    np.testing.assert_allclose(probabilities.numpy(), REFERENCE["techno/MSD_musicnn/taggram"], atol=2e-5)
    np.testing.assert_allclose(penultimate.numpy(), REFERENCE["techno/MSD_musicnn/penultimate"], atol=1e-4)


@pytest.mark.parametrize(
    ("piece", "expected"),
    [("piano", {"piano"}), ("strings", {"strings", "violin", "classical"}), ("rock", {"guitar", "rock"}),
     ("techno", {"techno", "electronic"})],
)  # fmt: skip
def test_tags_make_sense(folder, audio, piece, expected):
    music = MusicModel.load(folder, device="cpu").analyze(audio[piece])
    found = {tag for _, tag, _ in tags_above(music.tag_probabilities, music.tag_names)}
    assert expected <= found, f"{piece}: {sorted(found)}"


def test_manifest_records_source_licence_and_hashes(folder):
    from viml.engine.music.manifest import sha256_file

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"]["version"] == "0.1.0"
    assert "Permission to use, copy, modify" in manifest["licence_text"]
    assert (folder / "LICENSE-musicnn.md").exists()
    for entry in [*manifest["models"].values(), manifest["fused"]]:
        assert sha256_file(folder / entry["file"]) == entry["sha256"]
    assert all(len(entry["tags"]) == 50 for entry in manifest["models"].values())


def test_conversion_is_skipped_when_up_to_date(folder):
    from viml.export_onnx.musicnn import convert

    before = {p.name: os.stat(p).st_mtime_ns for p in folder.iterdir()}
    convert(output=folder)
    assert {p.name: os.stat(p).st_mtime_ns for p in folder.iterdir()} == before


def test_checkpoint_reader_reads_the_wheel_and_rejects_garbage():
    from viml.export_onnx.musicnn import find_musicnn, load_checkpoint
    from viml.export_onnx.tf_checkpoint import CheckpointFormatError, read_tensors

    tensors = load_checkpoint(find_musicnn(download=False), "MTT_musicnn")
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert tensors["dense_1/kernel"].shape == (200, 50)
    with pytest.raises(CheckpointFormatError):
        read_tensors(b"\x00" * 100, b"")
