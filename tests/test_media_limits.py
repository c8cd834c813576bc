"""Limits (engine/media/limits.py) and bounded memory: decode and analysis go window by window.

Issue 19.3: a 20 KB WAV declaring 1 Hz took 273 s and 7.5 GB, a 10-hour silence over 12 GB, and
`viml tag --segment-seconds 0.0001` 22 GB (segment lengths now come from the bundle's analysis spec). Now such input is refused with a reason, and analysing an
hour of audio holds one segment's spectrogram, not the hour's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hostile_media import analyze_isolated, channel_signal, fake_music_model, write_long_wav, write_wav
from viml.core.errors import MediaError
from viml.engine.media import audio, iter_audio, limits, read_audio
from viml.engine.music.frontend import log_mel_spectrogram, patch_starts, repeat_pad
from viml.engine.music.runtime import BATCH_PATCHES, _segment_means
from viml.engine.segments import segment_bounds

# Peak RSS an hour of audio may add to `MusicModel.analyze_file` (measured: 14-22 MB; the whole-array
# analysis before took ~450 MB per 10 minutes, ~2.7 GB per hour).
ANALYSIS_GROWTH_BOUND_MB = 64


@pytest.fixture
def ten_seconds(tmp_path):
    return write_wav(tmp_path / "ten.wav", channel_signal(2, 10 * 16000, 16000), 16000)


def test_a_file_longer_than_the_limit_is_refused_before_decoding(ten_seconds, monkeypatch):
    monkeypatch.setattr(limits, "MAX_AUDIO_SECONDS", 5.0)
    with pytest.raises(MediaError) as error:
        read_audio(ten_seconds, 16000)
    assert error.value.reason == "10 s of audio (0.0 h), more than the limit of 5 s (0.00138889 h)"
    # A range inside a long file stays readable: the limit is on what is read.
    assert len(read_audio(ten_seconds, 16000, start=2.0, end=6.0)) == 4 * 16000


def test_a_stream_running_past_the_limit_without_a_declared_length_stops(ten_seconds, monkeypatch):
    monkeypatch.setattr(limits, "MAX_AUDIO_SECONDS", 5.0)
    monkeypatch.setattr(audio, "stream_duration", lambda container, stream: None)
    blocks = iter_audio(ten_seconds, 16000)
    read = 0
    with pytest.raises(MediaError, match="the audio goes on past the limit of 5 s"):
        for block in blocks:
            read += len(block)
    assert read <= 6 * 16000  # stopped near the limit, not at the end of the file


def test_blocks_join_to_the_whole_read(ten_seconds):
    blocks = list(iter_audio(ten_seconds, 22050, start=0.3))
    assert all(len(b) >= 22050 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), read_audio(ten_seconds, 22050, start=0.3))


@pytest.mark.parametrize("segment_seconds", [0.0001, 0.5, 0.0, -1.0, float("nan"), float("inf"), 601.0])
def test_segment_lengths_outside_the_limits_are_refused(segment_seconds):
    with pytest.raises(ValueError, match="segment_seconds must be between 1 and 600 s"):
        segment_bounds(0.0, 100.0, segment_seconds)


def test_an_unbounded_span_is_refused():
    with pytest.raises(ValueError, match="unbounded"):
        segment_bounds(0.0, float("inf"))
    with pytest.raises(ValueError, match="empty span"):
        segment_bounds(0.0, float("nan"))


def test_the_limits_are_listed_in_one_place():
    assert limits.MIN_SEGMENT_SECONDS == 1.0 and limits.MAX_SEGMENT_SECONDS == 600.0
    assert limits.MAX_AUDIO_SECONDS == 4 * 3600 and limits.MIN_SAMPLE_RATE == 4000
    assert limits.MAX_CHANNELS == 64


def test_a_tiny_segment_length_is_a_per_file_error_not_a_runaway(ten_seconds):
    with pytest.raises(MediaError, match="segment_seconds must be between"):
        fake_music_model().analyze_file(ten_seconds, segment_seconds=0.0001)


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [("--threshold", "nan", "finite"), ("--threshold", "1.5", "between 0 and 1"),
     ("--threshold", "inf", "finite"), ("--threshold", "ten", "not a number"),
     ("--top", "0", "1 or more"), ("--top", "2.5", "not a whole number"),
     ("--jobs", "0", "1 or more"), ("--jobs", "-3", "1 or more")],
)  # fmt: skip
def test_viml_tag_refuses_bad_numbers_in_one_line(tmp_path, capsys, argument, value, message):
    from viml.cli import main

    with pytest.raises(SystemExit) as exit_status:
        main(["tag", str(tmp_path), argument, value])
    assert exit_status.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("viml tag: error: argument ") and argument in error and message in error


def _analyze_in_one_piece(model, signal: np.ndarray, segment_seconds: float):
    """The analysis as it was: the whole signal's spectrogram, every patch, then the segment means."""
    config = model.front_end
    features = log_mel_spectrogram(signal, config)
    frames_per_second = config.sample_rate / config.hop_length
    segments = segment_bounds(0.0, signal.size / config.sample_rate, segment_seconds)
    patches, owners = [], []
    for segment in segments:
        first = min(int(round(segment.start * frames_per_second)), len(features) - 1)
        last = max(first + 1, min(int(round(segment.end * frames_per_second)), len(features)))
        span = features[first:last]
        for start in patch_starts(len(span), config.patch_frames):
            patches.append(repeat_pad(span[start : start + config.patch_frames], config.patch_frames))
            owners.append(segment.index)
    outputs = model.run_patches(np.stack(patches))
    owners_array = np.asarray(owners)
    means = {v: _segment_means(p, owners_array, len(segments)) for v, (p, _) in outputs.items()}
    return segments, means, len(patches)


@pytest.mark.parametrize("seconds", [0.01, 0.04, 1.0, 1.016, 3.7, 25.0, 61.3, 95.02])
@pytest.mark.parametrize("segment_seconds", [1.0, 2.5, 10.0, 30.0])
def test_windowed_analysis_equals_the_one_piece_analysis(seconds, segment_seconds):
    signal = (np.random.default_rng(7).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)
    model = fake_music_model()
    segments, expected, patch_count = _analyze_in_one_piece(model, signal, segment_seconds)
    runs = (
        lambda: model.analyze(signal, 16000, segment_seconds),
        lambda: model.analyze_stream(
            (signal[i : i + 997] for i in range(0, signal.size, 997)), segment_seconds
        ),
    )
    for run in runs:
        model.fused_session.batch_sizes.clear()
        music = run()
        sizes = model.fused_session.batch_sizes
        assert set(sizes[:-1]) <= {BATCH_PATCHES} and sum(sizes) == patch_count  # batches as before
        np.testing.assert_array_equal(music.starts, [s.start for s in segments])
        np.testing.assert_array_equal(music.ends, [s.end for s in segments])
        for vocabulary, probabilities in expected.items():
            np.testing.assert_allclose(music.tag_probabilities[vocabulary], probabilities, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_an_hour_of_audio_is_analysed_in_bounded_memory(tmp_path):
    hour = write_long_wav(tmp_path / "hour.wav", 3600, sample_rate=16000, amplitude=0.01)
    result = analyze_isolated(hour)
    assert "crash" not in result, result["crash"]
    assert result["segments"] == 360 and result["end"] == 3600.0
    assert result["rss_growth_mb"] < ANALYSIS_GROWTH_BOUND_MB, result
