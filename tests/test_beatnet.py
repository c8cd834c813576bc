"""BeatNet on onnxruntime: madmom's features rebuilt in numpy, the conversion from the real wheel, parity
with BeatNet's own torch model, streaming, chunking, and beats found at 120 BPM in the wheel's recording."""

from __future__ import annotations

import io
import json
import shutil
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from viml.engine.music.rhythm.features import (
    BANDS,
    BEATNET_FEATURES,
    BLOCK_ROWS,
    FEATURE_DIM,
    FeatureStream,
    bin_frequencies,
    diff_frames,
    feature_bands,
    log_filterbank,
    log_filtered_spectrogram,
    num_frames,
)

SR = BEATNET_FEATURES.sample_rate
HOP = BEATNET_FEATURES.hop_size


# --- features: the filterbank, derived independently from madmom's definitions -----------------------


def _independent_bank() -> tuple[np.ndarray, np.ndarray]:
    """madmom's LogarithmicFilterbank by brute force: log grid by enumeration, nearest bin by argmin."""
    per_octave, fmin, fmax, fref = 24, 30.0, 17000.0, 440.0
    grid = np.array([fref * 2 ** (k / per_octave) for k in range(-400, 400)])
    grid = grid[(grid >= fmin) & (grid <= fmax)]
    # madmom's bin frequencies: fftfreq(2 * num_bins, 1 / sr)[:num_bins], num_bins = 1411 >> 1 = 705
    bins = np.arange(705) * SR / 1410
    nearest = np.unique([int(np.argmin(np.abs(bins - f))) for f in grid])
    bank = np.zeros((705, len(nearest) - 2))
    for band in range(len(nearest) - 2):
        start, peak, stop = nearest[band : band + 3]
        k = np.arange(705)
        rising = np.where((k >= start) & (k < peak), (k - start) / (peak - start), 0.0)
        falling = np.where((k >= peak) & (k < stop), (stop - k) / (stop - peak), 0.0)
        bank[:, band] = (rising + falling) / (rising + falling).sum()
    return bank, grid


def test_filterbank_has_136_bands_as_derived_from_madmoms_definition():
    bank, grid = _independent_bank()
    # 219 grid frequencies (k = -92 ... 126 around A4); below ~530 Hz their spacing (2^(1/24) - 1 = 2.9 %)
    # is under one bin (15.64 Hz), so several share a bin, and everything above the last bin (11009 Hz)
    # lands on it: 138 distinct bins, and a triangle needs three of them, so 136 bands.
    assert len(grid) == 219
    assert bank.shape == (705, 136) == log_filterbank().shape
    assert BANDS == 136 and FEATURE_DIM == 272
    np.testing.assert_allclose(log_filterbank(), bank, atol=1e-6)
    assert log_filterbank().dtype == np.float32


def test_each_filter_sums_to_one_and_peaks_on_the_log_grid():
    bank = log_filterbank()
    np.testing.assert_allclose(bank.sum(axis=0), 1.0, atol=1e-6)
    assert (bank >= 0).all()
    half_bin = SR / 1410 / 2
    _, grid = _independent_bank()
    peaks = bin_frequencies()[bank.argmax(axis=0)]
    assert np.all(np.min(np.abs(peaks[:, None] - grid[None]), axis=1) <= half_bin + 1e-9)
    assert np.all(np.diff(peaks) > 0)  # ascending, one band per distinct bin
    assert peaks[0] < 60 and peaks[-1] > 10000


def test_difference_looks_one_frame_back():
    # Hann(1411) first exceeds half its peak at sample 353 (> (1411 - 1) / 4): (705.5 - 353) / 441 = 0.8 -> 1.
    assert diff_frames() == 1


# --- features: frame placement, scaling, frequency --------------------------------------------------


def test_frame_count_and_placement_follow_madmoms_framed_signal():
    for samples in (1, 440, 441, 442, 1411, 22050, 22051):
        assert num_frames(samples) == -(-samples // HOP)
        assert log_filtered_spectrogram(np.zeros(samples, np.float32)).shape == (num_frames(samples), 272)
    assert log_filtered_spectrogram(np.zeros(0, np.float32)).shape == (0, 272)
    # A unit impulse has a flat spectrum of height w[n], n its place in the Hann window of frame i, and
    # every filter sums to 1: each band of frame i is log10(1 + hann[s - 441 i + 705]).
    impulse = np.zeros(10 * HOP, np.float32)
    at = 4 * HOP + 123
    impulse[at] = 1.0
    rows = log_filtered_spectrogram(impulse)
    window = np.hanning(1411)
    for i, row in enumerate(feature_bands(rows)):
        offset = at - i * HOP + 705
        expected = np.log10(1 + window[offset]) if 0 <= offset < 1411 else 0.0
        np.testing.assert_allclose(row, expected, atol=2e-6)
    bands = feature_bands(rows)
    differences = rows[:, BANDS:]
    np.testing.assert_array_equal(differences[0], 0)
    np.testing.assert_allclose(differences[1:], np.maximum(bands[1:] - bands[:-1], 0), atol=1e-7)


def test_a_sine_lands_in_the_band_of_its_frequency():
    t = np.arange(SR) / SR
    for frequency in (220.0, 1000.0, 4000.0):
        rows = feature_bands(log_filtered_spectrogram(np.sin(2 * np.pi * frequency * t).astype(np.float32)))
        peak_band = int(rows[10:-10].mean(axis=0).argmax())
        centre = bin_frequencies()[log_filterbank()[:, peak_band].argmax()]
        assert abs(np.log2(centre / frequency)) < 1 / 24 + 0.02  # within about one band


def _music_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    clicks = (np.sin(2 * np.pi * 2 * t) > 0.99).astype(np.float32) * rng.standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * clicks + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def test_streamed_features_equal_one_shot_with_bounded_memory():
    audio = _music_like(7.3)
    expected = log_filtered_spectrogram(audio)
    for sizes in ([1, 7, 440, 441, 442, 1411, 5000], [13], [99991], [3001, 1]):
        stream, parts, position, index, held = FeatureStream(), [], 0, 0, 0
        while position < len(audio):
            size = sizes[index % len(sizes)]
            parts.append(stream.push(audio[position : position + size]))
            held = max(held, len(stream._signal.samples) - size)
            position, index = position + size, index + 1
        parts.append(stream.finish())
        np.testing.assert_array_equal(np.concatenate(parts), expected)
        # what stays between pushes: about a frame plus the rows waiting for a batch, never the signal
        assert held <= 1411 + (BLOCK_ROWS + 1) * HOP
    with pytest.raises(ValueError, match="after finish"):
        stream.push(audio[:10])


# --- conversion and run time (the real wheel) ------------------------------------------------------


@pytest.fixture(scope="module")
def wheel():
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.beatnet import find_beatnet

    try:
        source = find_beatnet(download=False)
    except WeightsUnavailableError:
        pytest.skip("the BeatNet 1.1.3 wheel is not available offline on this machine")
    if not source.path.is_file():
        pytest.skip("BeatNet is installed as a package, not a wheel zip")
    return source.path


@pytest.fixture(scope="module")
def converted(wheel, tmp_path_factory) -> Path:
    from viml.export_onnx.beatnet import convert

    return convert(wheel=wheel, output=tmp_path_factory.mktemp("beatnet"))


@pytest.fixture(scope="module")
def kick(wheel, tmp_path_factory) -> np.ndarray:
    """The wheel's own test recording (an 808 kick at 120 BPM), decoded as the product decodes."""
    from viml.engine.media import read_audio

    path = tmp_path_factory.mktemp("kick") / "808kick120bpm.mp3"
    with zipfile.ZipFile(wheel) as archive:
        path.write_bytes(archive.read("BeatNet/test_data/808kick120bpm.mp3"))
    return read_audio(path, SR)


def _model(folder: Path, number: int = 1, **kwargs):
    from viml.engine.music.rhythm.network import BeatNetModel

    return BeatNetModel.load(folder, number, device="cpu", **kwargs)


def test_conversion_writes_verified_models_licence_and_manifest(converted, wheel):
    from viml.engine.music.manifest import sha256_file

    manifest = json.loads((converted / "manifest.json").read_text())
    assert manifest["licence"] == "CC BY 4.0"
    assert "Heydari" in manifest["attribution"] and "ISMIR" in manifest["attribution"]
    assert "Attribution 4.0 International" in (converted / manifest["licence_file"]).read_text()
    assert manifest["source"]["wheel_sha256"] == sha256_file(wheel)
    assert manifest["features"] == BEATNET_FEATURES.as_dict()
    assert {m["held_out"] for m in manifest["models"].values()} == {"GTZAN", "Ballroom", "Rock Corpus"}
    for entry in manifest["models"].values():
        assert sha256_file(converted / entry["file"]) == entry["sha256"]
        assert max(entry["onnx_vs_torch_max_abs_difference"].values()) <= 1e-4
    digests = {entry["sha256"] for entry in manifest["models"].values()}
    assert len(digests) == 3  # three different trainings, not one file thrice


def test_conversion_is_skipped_when_up_to_date(converted, wheel):
    from viml.export_onnx.beatnet import convert

    before = {path.name: path.stat().st_mtime_ns for path in converted.iterdir()}
    assert convert(wheel=wheel, output=converted) == converted
    assert {path.name: path.stat().st_mtime_ns for path in converted.iterdir()} == before


def test_cli_reports_the_converted_folder(converted, wheel, capsys):
    from viml.cli import main

    assert main(["convert-beatnet", "--wheel", str(wheel), "--output", str(converted)]) == 0
    assert str(converted) in capsys.readouterr().out


def _beatnet_bda(wheel: Path, number: int):
    """BeatNet's own BDA class (its model.py, torch only) with its weights, loaded as BeatNet loads them."""
    import torch

    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("BeatNet/model.py").decode("utf-8")
        weights = archive.read(f"BeatNet/models/model_{number}_weights.pt")
    module = types.ModuleType("beatnet_reference_model")
    exec(compile(source, "BeatNet/model.py", "exec"), module.__dict__)  # the reference, run in the test only
    model = module.BDA(272, 150, 2, "cpu")
    model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True), strict=False)
    return model.eval()


@pytest.mark.parametrize("number", [1, 2, 3])
def test_onnx_matches_beatnets_own_torch_model_on_real_features(converted, wheel, kick, number):
    import torch

    features = log_filtered_spectrogram(kick)
    reference = _beatnet_bda(wheel, number)
    with torch.no_grad():  # BeatNet.activation_extractor_online
        output = reference.final_pred(reference(torch.from_numpy(features).unsqueeze(0))[0])
    expected = output.numpy()[:2].T
    actual = _model(converted, number).activations(kick)
    assert actual.shape == (len(features), 2) and actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= 1e-4


def _beat_peaks(activations: np.ndarray) -> np.ndarray:
    """Times (s) of local maxima above 0.5 of the probability of any beat (beat + downbeat columns)."""
    any_beat = activations.sum(axis=1)
    middle = any_beat[1:-1]
    peaks = np.flatnonzero((middle > 0.5) & (middle >= any_beat[:-2]) & (middle > any_beat[2:])) + 1
    return peaks / BEATNET_FEATURES.fps


def _is_120_bpm(activations: np.ndarray, seconds: float) -> bool:
    peaks = _beat_peaks(activations)
    spacing = np.diff(peaks)
    return len(peaks) >= 2 * seconds - 3 and bool(np.all(np.abs(spacing - 0.5) <= 0.04))


@pytest.mark.parametrize("number", [1, 2, 3])
def test_beats_of_the_120_bpm_recording_are_half_a_second_apart(converted, kick, number):
    activations = _model(converted, number).activations(kick)
    assert _is_120_bpm(activations, len(kick) / SR), _beat_peaks(activations)


def test_the_beat_criterion_rejects_an_untrained_network(kick):
    import torch
    from viml.export_onnx.beatnet_torch import BeatNetCRNN, zero_state

    torch.manual_seed(0)
    features = torch.from_numpy(log_filtered_spectrogram(kick))[None]
    with torch.no_grad():
        activations = BeatNetCRNN().eval()(features, *zero_state(1))[0][0].numpy()
    assert not _is_120_bpm(activations, len(kick) / SR)


def test_streamed_activations_equal_the_whole_sequence_run(converted, kick):
    model = _model(converted)
    features = log_filtered_spectrogram(kick)
    whole, _ = model.sequence(features)
    stream = model.stream()
    for start in range(0, len(kick), 7919):  # odd blocks: the LSTM runs in pieces, carrying its state
        stream.push(kick[start : start + 7919])
    activations, bands = stream.finish()
    assert np.abs(activations - whole).max() <= 1e-6
    np.testing.assert_array_equal(bands, feature_bands(features).astype(np.float16))
    assert bands.dtype == np.float16 and bands.shape == (len(features), BANDS)


def test_chunked_batches_match_the_whole_sequence_and_stream_alike(converted, kick):
    from viml.engine.music.rhythm.network import ChunkPlan

    audio = np.tile(kick, 3)  # 30 s: 1500 frames, 5 chunks of 300, in batches of 2
    plan = ChunkPlan(chunk_frames=300, warmup_frames=600, batch_chunks=2)
    features = log_filtered_spectrogram(audio)
    whole, _ = _model(converted, 3).sequence(features)
    chunked_model = _model(converted, 3, plan=plan)
    chunked = chunked_model.run_features(features)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked[:300], whole[:300], atol=1e-5)  # chunk 0 starts at the start
    assert np.abs(chunked - whole).max() <= 1e-3  # 12 s of warm-up on this steady recording
    stream = chunked_model.stream(keep_bands=False)
    for start in range(0, len(audio), 12345):
        stream.push(audio[start : start + 12345])
    streamed, bands = stream.finish()
    assert bands is None
    np.testing.assert_allclose(streamed, chunked, atol=1e-6)
    # a warm-up too short to forget the zero start shows: the plan matters, it is in the model id
    short = _model(converted, 3, plan=ChunkPlan(300, 0, 2)).run_features(features)
    assert np.abs(short - whole).max() > 1e-3
    assert chunked_model.model_id != _model(converted, 3).model_id


def test_model_id_names_the_onnx_file(converted):
    manifest = json.loads((converted / "manifest.json").read_text())
    ids = {_model(converted, n).model_id for n in (1, 2, 3)}
    assert len(ids) == 3
    assert manifest["models"]["1"]["sha256"][:16] in _model(converted, 1).model_id


def test_missing_or_tampered_models_say_how_to_convert(converted, tmp_path):
    from viml.engine.music.rhythm.network import BeatNetMissingError, BeatNetModel
    from viml.engine.music.runtime import ModelsMissingError

    with pytest.raises(BeatNetMissingError, match="viml convert-beatnet"):
        BeatNetModel.load(tmp_path / "nothing")
    folder = tmp_path / "beatnet"
    shutil.copytree(converted, folder)
    data = bytearray((folder / "beatnet_2.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "beatnet_2.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelsMissingError, match=r"model 2: .*sha256.*convert-beatnet --force"):
        BeatNetModel.load(folder, 2, device="cpu")
    assert BeatNetModel.load(folder, 1, device="cpu").number == 1  # the untouched files still load
    (folder / "beatnet_3.onnx").unlink()
    with pytest.raises(BeatNetMissingError, match="missing"):
        BeatNetModel.load(folder, 3, device="cpu")
    with pytest.raises(ValueError, match="one of"):
        BeatNetModel.load(folder, 4)


def test_bad_audio_is_refused(converted):
    model = _model(converted)
    with pytest.raises(ValueError, match="NaN"):
        model.activations(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="mono"):
        model.activations(np.zeros((10, 2), np.float32))
    assert model.activations(np.zeros(0, np.float32)).shape == (0, 2)
