"""Measured sound descriptors (engine/music/descriptors.py): calibration, the streaming analysis, the
concept columns on synthetic libraries, and real rendered audio through the real taggers."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hostile_media import fake_music_model
from media_factory import write_audio
from music_helpers import converted_models
from viml.demo.reference_audio import render_piece
from viml.engine.music import descriptors as d
from viml.engine.music.frontend import log_mel_spectrogram

SR = 16000


def measure(audio: np.ndarray) -> dict[str, float]:
    return d.segment_descriptors(log_mel_spectrogram(np.asarray(audio, np.float32)))


def sine(frequency: float, amplitude: float = 1.0, seconds: float = 10.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def low_passed(audio: np.ndarray, cutoff: float) -> np.ndarray:
    spectrum = np.fft.rfft(audio)
    spectrum[np.fft.rfftfreq(len(audio), 1 / SR) > cutoff] = 0
    return np.fft.irfft(spectrum, len(audio)).astype(np.float32)


def crescendo(audio: np.ndarray, low_db: float, high_db: float) -> np.ndarray:
    """The audio under a gain rising linearly in dB from low_db to high_db."""
    return (audio * 10 ** (np.linspace(low_db, high_db, len(audio)) / 20)).astype(np.float32)


# --- one segment ----------------------------------------------------------------------------------


def test_loudness_is_bs1770_lufs():
    assert measure(sine(1000))["loudness"] == pytest.approx(-3.01, abs=0.05)  # BS.1770's own check
    assert measure(sine(1000, 0.5))["loudness"] == pytest.approx(-9.03, abs=0.05)
    assert measure(np.zeros(SR * 10))["loudness"] == d.LOUDNESS_FLOOR


def test_loudness_matches_time_domain_k_weighting():
    signal = pytest.importorskip("scipy.signal")
    soxr = pytest.importorskip("soxr")
    rng = np.random.default_rng(0)
    cases = [sine(100, 0.5), sine(5000, 0.5), 0.1 * rng.standard_normal(SR * 10), render_piece("rock", 10.0)]
    for audio in cases:
        at_48k = soxr.resample(np.asarray(audio, np.float64), SR, 48000)
        for b, a in d._K_FILTERS:
            at_48k = signal.lfilter(b, a, at_48k)
        reference = -0.691 + 10 * np.log10(np.mean(at_48k**2))
        assert measure(audio)["loudness"] == pytest.approx(reference, abs=0.3)


def test_brightness_is_the_spectral_centroid():
    for frequency in (200.0, 1000.0, 4000.0):
        assert measure(sine(frequency, 0.5))["brightness"] == pytest.approx(frequency, rel=0.05)
    noise = np.random.default_rng(1).standard_normal(SR * 10).astype(np.float32) * 0.1
    assert measure(noise)["brightness"] == pytest.approx(4000, rel=0.05)  # flat up to 8 kHz
    assert measure(low_passed(noise, 1000))["brightness"] < 700
    assert np.isnan(measure(np.zeros(SR * 10))["brightness"])


def test_onset_rate_counts_attacks_not_steady_sound():
    clicks = np.zeros(SR * 10, np.float32)
    clicks[SR // 8 :: SR // 4] = 0.8  # 4 per second
    assert measure(clicks)["onset_rate"] == pytest.approx(4.0, abs=0.1)
    noise = np.random.default_rng(2).standard_normal(SR * 10).astype(np.float32) * 0.3
    assert measure(noise)["onset_rate"] == 0.0
    assert measure(sine(440, 0.5))["onset_rate"] <= 0.1  # the tone's start at most
    assert (
        measure(render_piece("techno", 10.0))["onset_rate"]
        > 2
        > measure(render_piece("strings", 10.0))["onset_rate"]
    )


# --- the streaming analysis -------------------------------------------------------------------------


def test_streamed_descriptors_equal_those_of_the_whole_signal():
    rng = np.random.default_rng(3)
    audio = crescendo(rng.standard_normal(int(SR * 47.3)).astype(np.float32), -40, -6)
    model = fake_music_model()
    music = model.analyze_stream(audio[i : i + 997] for i in range(0, audio.size, 997))
    whole = log_mel_spectrogram(audio)
    rows_per_second = SR / 256
    for i, (start, end) in enumerate(zip(music.starts, music.ends, strict=True)):
        span = whole[int(round(start * rows_per_second)) : int(round(end * rows_per_second))]
        for name, value in d.segment_descriptors(span).items():
            assert music.descriptors[name][i] == pytest.approx(value, rel=1e-4), name
    assert set(music.descriptors) == set(d.DESCRIPTORS)
    assert all(v.dtype == np.float32 and v.shape == (5,) for v in music.descriptors.values())


def test_a_rendered_crescendo_builds_and_a_low_passed_piece_is_darker(tmp_path):
    piece = render_piece("rock", 60.0)
    rising = write_audio(tmp_path / "rising.flac", signal=crescendo(piece, -36, 0)[None], sample_rate=SR)
    model = fake_music_model()
    music = model.analyze_file(rising)
    loudness = music.descriptors["loudness"]
    assert len(loudness) == 6 and (np.diff(loudness) > 3).all(), loudness  # ~6 LU per 10 s segment
    steady = model.analyze(piece)
    columns = d.descriptor_columns(
        {k: np.concatenate([music.descriptors[k], steady.descriptors[k]]) for k in d.DESCRIPTORS},
        np.array([0, 6]),
        np.array([6, 6]),
    )
    assert columns["building"][3:6].min() == 1.0 and columns["building"][9:12].max() < 0.3
    assert columns["calm then explosive"][0] == 1.0 and columns["calm then explosive"][6] == 0.0
    dull = model.analyze(low_passed(piece, 800))
    assert (dull.descriptors["brightness"] < 0.6 * steady.descriptors["brightness"]).all()
    # A clip read from 20 s on has the file's own segments' values, shifted.
    tail = model.analyze_file(rising, start=20.0)
    np.testing.assert_allclose(tail.starts, [20, 30, 40, 50])
    np.testing.assert_allclose(tail.descriptors["loudness"], loudness[2:], atol=0.3)


# --- concept columns --------------------------------------------------------------------------------


def library(*tracks: list[float], brightness: float = 2000.0, onsets: float = 2.0):
    """Descriptor arrays of tracks given by their segments' loudness."""
    loudness = np.concatenate([np.asarray(t, np.float32) for t in tracks])
    counts = np.array([len(t) for t in tracks])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    values = {
        "loudness": loudness,
        "brightness": np.full(len(loudness), brightness, np.float32),
        "onset_rate": np.full(len(loudness), onsets, np.float32),
    }
    return values, starts, counts


def test_a_crescendo_builds_and_a_flat_track_does_not():
    values, starts, counts = library(list(np.linspace(-40, -10, 8)), [-14.0] * 8, [-14, -15, -13, -14] * 2)
    columns = d.descriptor_columns(values, starts, counts)
    building = columns["building"]
    assert building[0] == 0 and (np.diff(building[:8]) >= 0).all() and building[4:8].min() == 1.0
    assert building[8:].max() <= 0.2
    arc = columns["calm then explosive"]
    assert (arc[:8] == 1.0).all() and (arc[8:] == 0.0).all()  # track level: constant over its segments
    assert set(columns) == set(d.CONCEPTS)
    assert all(
        c.dtype == np.float32 and c.shape == (24,) and (c >= 0).all() and (c <= 1).all()
        for c in columns.values()
    )


def test_calm_then_explosive_needs_the_order_contrast_does_not():
    values, starts, counts = library([-35, -33, -10, -9], [-9, -10, -33, -35])
    columns = d.descriptor_columns(values, starts, counts)
    assert columns["calm then explosive"][0] == 1.0 and columns["calm then explosive"][4] == 0.0
    assert columns["contrast"][0] == columns["contrast"][4] == 1.0
    assert columns["building"][2] == 1.0 and columns["building"][4:].max() == 0.0


def test_loud_and_quiet_are_relative_to_the_library():
    quiet_library = library([-40, -38], [-30, -28], [-34, -35])
    columns = d.descriptor_columns(*quiet_library)
    assert columns["loud"][3] == 1.0 and columns["quiet"][0] == 1.0  # the loudest of a quiet library
    np.testing.assert_allclose(columns["loud"] + columns["quiet"], 1.0)
    uniform = d.descriptor_columns(*library([-14.0, -14.5], [-14.2, -13.8]))
    assert np.abs(uniform["loud"] - 0.5).max() < 0.1  # no spread stretched into loud vs quiet


def test_bright_dark_busy_sparse_follow_their_descriptors():
    values, starts, counts = library([-14, -14], [-14, -14])
    values["brightness"] = np.array([500, 600, 3000, 4000], np.float32)
    values["onset_rate"] = np.array([0.2, 0.5, 4.0, 6.0], np.float32)
    columns = d.descriptor_columns(values, starts, counts)
    assert columns["bright"][3] == 1 and columns["dark"][0] == 1 and columns["bright"][2] > 0.7
    assert columns["busy"][3] == 1 and columns["sparse"][0] == 1


def test_missing_and_silent_segments_score_zero():
    values, starts, counts = library([-20, -100, -12], [-15, -15])
    values["loudness"][3:] = np.nan  # a content stored before descriptors existed
    values["brightness"][:] = np.nan
    columns = d.descriptor_columns(values, starts, counts)
    for name, column in columns.items():
        assert column[1] == 0 and (column[3:] == 0).all(), name
    assert columns["bright"][0] == columns["dark"][0] == 0
    assert columns["building"][2] == pytest.approx(0.8)  # the silent segment is skipped, not a valley
    empty = d.descriptor_columns({}, np.array([0]), np.array([2]))
    assert all((c == 0).all() and c.shape == (2,) for c in empty.values())
    with pytest.raises(ValueError, match="shape"):
        d.descriptor_columns({"loudness": np.zeros(3)}, np.array([0]), np.array([2]))


def test_every_concept_has_prompt_phrases():
    from viml.engine.text.tagset import load_table

    table = load_table()
    assert set(table.vocabularies["SOUND"]) == set(d.CONCEPTS)  # every measured concept has prompt wordings
    assert all(table.concept_for("SOUND", name).mentions for name in d.CONCEPTS)


# --- the real taggers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from viml.engine.music.runtime import MusicModel

    return MusicModel.load(converted_models(tmp_path_factory), device="cpu", threads=1)


def test_the_real_analysis_measures_a_crescendo_and_its_cost(model, monkeypatch):
    audio = crescendo(render_piece("techno", 60.0), -30, 0)
    music = model.analyze(audio)
    assert (np.diff(music.descriptors["loudness"]) > 3).all(), music.descriptors["loudness"]
    columns = d.descriptor_columns(music.descriptors, np.array([0]), np.array([len(music.starts)]))
    assert columns["building"][-1] == 1.0 and columns["calm then explosive"][0] > 0.5
    # Cost (printed, not asserted): the analysis with and without descriptors, best of 3.
    from viml.engine.music import runtime

    def best() -> float:
        times = []
        for _ in range(3):
            begin = time.process_time()
            model.analyze(audio)
            times.append(time.process_time() - begin)
        return min(times)

    with_descriptors = best()
    monkeypatch.setattr(
        runtime, "segment_descriptors", lambda rows, config: dict.fromkeys(d.DESCRIPTORS, 0.0)
    )
    without = best()
    print(
        f"\nanalysis of 60 s: {with_descriptors:.3f} CPU s with descriptors, {without:.3f} without "
        f"({100 * (with_descriptors - without) / without:+.1f}%)"
    )


def test_the_analysis_id_changes_with_the_analysis_version(monkeypatch):
    from viml.engine.bundles.spec import ANALYSIS_VERSION, AnalysisSpec

    spec = AnalysisSpec(music_model_files={"MTT_musicnn.onnx": "a" * 64})
    current = spec.analysis_id
    assert ANALYSIS_VERSION >= 2  # 2: the analysis measures descriptors
    monkeypatch.setattr(AnalysisSpec, "analysis_version", 1)
    assert spec.analysis_id != current  # catalogs analysed before descriptors are re-analysed by a scan
    assert "analysis_version" not in spec.to_json()  # the code's, not the bundle's
