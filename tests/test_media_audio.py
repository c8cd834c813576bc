"""Audio for the music model: formats, rates, channels, ranges, soxr parity, bad input."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
import soxr
from media_factory import (
    AUDIO_CODECS,
    tone,
    write_audio,
    write_ogg_repeated_headers,
    write_random_bytes,
    write_truncated,
    write_video,
    write_zero_bytes,
)
from viml.core.errors import MediaError
from viml.engine.media import probe, read_audio


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("suffix", sorted(AUDIO_CODECS))
def test_decode_each_audio_format(tmp_path, suffix):
    path = write_audio(tmp_path / f"song{suffix}", seconds=1.0, sample_rate=44100, channels=2, frequency=440)
    info = probe(path)
    assert info.has_audio and not info.has_video and info.channels == 2
    samples = read_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(16000, rel=0.03)
    assert np.abs(samples).max() <= 1.0
    assert dominant_frequency(samples, 16000) == pytest.approx(440, abs=5)
    rms = float(np.sqrt(np.mean(samples[1600:-1600] ** 2)))  # skip codec ramp-in/out
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_streamed_resampling_equals_one_shot_soxr_hq(tmp_path):
    """Channel mean then soxr HQ, as librosa.load does for the tagger's reference."""
    rng = np.random.default_rng(0)
    signal = (rng.uniform(-0.5, 0.5, (2, 3 * 44100))).astype(np.float32)
    path = write_audio(tmp_path / "noise.wav", sample_rate=44100, codec="pcm_f32le", signal=signal)
    expected = soxr.resample(signal.mean(axis=0), 44100, 16000, quality="HQ")
    samples = read_audio(path, 16000)
    assert len(samples) == len(expected)
    np.testing.assert_allclose(samples, expected, atol=1e-5)


def test_same_rate_and_exact_range_are_sample_accurate(tmp_path):
    signal = tone(2.0, 16000, channels=1, frequency=300)
    path = write_audio(tmp_path / "tone.wav", sample_rate=16000, codec="pcm_f32le", signal=signal)
    np.testing.assert_array_equal(read_audio(path, 16000), signal[0])
    np.testing.assert_array_equal(read_audio(path, 16000, start=0.25, end=1.5), signal[0, 4000:24000])
    np.testing.assert_array_equal(read_audio(path, 16000, start=1.5), signal[0, 24000:])


def test_downmix_is_the_channel_mean(tmp_path):
    wave = tone(1.0, 16000, frequency=250)[0]
    opposite = write_audio(tmp_path / "cancel.wav", codec="pcm_f32le", signal=np.stack([wave, -wave]))
    assert np.abs(read_audio(opposite, 16000)).max() < 1e-6
    one_side = write_audio(tmp_path / "left.wav", codec="pcm_f32le", signal=np.stack([wave, 0 * wave]))
    np.testing.assert_allclose(read_audio(one_side, 16000), wave / 2, atol=1e-7)


def test_multichannel_and_extreme_rates(tmp_path):
    surround = write_audio(tmp_path / "surround.flac", seconds=1, sample_rate=48000, channels=6)
    assert probe(surround).channels == 6
    assert len(read_audio(surround, 16000)) == 16000
    for rate in (8000, 96000):
        path = write_audio(tmp_path / f"r{rate}.flac", seconds=1, sample_rate=rate, frequency=1000)
        samples = read_audio(path, 22050)
        assert len(samples) == 22050
        assert dominant_frequency(samples, 22050) == pytest.approx(1000, abs=5)


def test_seek_into_a_compressed_file_matches_the_full_decode(tmp_path):
    path = write_audio(tmp_path / "long.mp3", seconds=6, sample_rate=44100, channels=2, frequency=523)
    full = read_audio(path, 16000)
    tail = read_audio(path, 16000, start=4.0, end=5.0)
    assert len(tail) == 16000
    reference = full[4 * 16000 : 5 * 16000]
    np.testing.assert_allclose(tail[800:-800], reference[800:-800], atol=2e-3)


def test_audio_of_a_video_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4", seconds=2, fps=5, with_audio=True, audio_sample_rate=44100)
    samples = read_audio(path, 16000, start=0.5)
    assert len(samples) == pytest.approx(1.5 * 16000, rel=0.03)
    assert dominant_frequency(samples, 16000) == pytest.approx(440, abs=5)


def test_full_scale_lossy_audio_stays_within_one(tmp_path):
    path = write_audio(tmp_path / "loud.mp3", sample_rate=44100, signal=tone(1.0, 44100, 2, 3000, 1.0))
    samples = read_audio(path, 16000)
    assert samples.max() <= 1.0 and samples.min() >= -1.0


@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".m4a"])
def test_truncated_audio_is_an_error(tmp_path, suffix):
    whole = write_audio(tmp_path / f"whole{suffix}", seconds=4, sample_rate=44100, channels=2)
    cut = write_truncated(whole, tmp_path / f"cut{suffix}", keep=0.5)
    with pytest.raises(MediaError, match="truncated|corrupt"):
        read_audio(cut, 16000)


def test_unreadable_and_unsuitable_inputs(tmp_path):
    with pytest.raises(MediaError, match="empty file"):
        read_audio(write_zero_bytes(tmp_path / "empty.wav"), 16000)
    with pytest.raises(MediaError, match="not a readable media file"):
        read_audio(write_random_bytes(tmp_path / "noise.mp3"), 16000)
    with pytest.raises(MediaError, match="file not found"):
        read_audio(tmp_path / "missing.flac", 16000)
    with pytest.raises(MediaError, match="no audio stream"):
        read_audio(write_video(tmp_path / "silent.mkv", seconds=1), 16000)
    song = write_audio(tmp_path / "song.wav", seconds=1)
    with pytest.raises(MediaError, match="past the end"):
        read_audio(song, 16000, start=3)
    with pytest.raises(ValueError):
        read_audio(song, 0)
    with pytest.raises(ValueError):
        read_audio(song, 16000, start=0.5, end=0.2)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path):
    song = write_audio(tmp_path / "locked.wav", seconds=0.5)
    song.chmod(0)
    try:
        with pytest.raises(MediaError, match="permission denied"):
            read_audio(song, 16000)
    finally:
        song.chmod(0o644)


def test_unreadable_permission_is_reported(tmp_path, monkeypatch):
    """The same check when running as root (which reads any file): the access test is what fails."""
    song = write_audio(tmp_path / "locked.wav", seconds=0.5)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(MediaError, match="permission denied"):
        read_audio(song, 16000)


@pytest.mark.parametrize("own_page", [False, True])
def test_ogg_vorbis_with_repeated_headers_reads_like_the_original(tmp_path, own_page):
    """Debian hyperrogue-music's hr-savino-*.ogg repeat their header packets before any audio."""
    original = write_audio(tmp_path / "original.ogg", seconds=1.0, sample_rate=44100, channels=2)
    broken = write_ogg_repeated_headers(original, tmp_path / "repeated.ogg", own_page=own_page)
    with pytest.raises(av.error.InvalidDataError):  # what FFmpeg alone makes of it
        av.open(str(broken)).close()
    np.testing.assert_array_equal(read_audio(broken, 16000), read_audio(original, 16000))
    np.testing.assert_array_equal(
        read_audio(broken, 16000, start=0.5, end=0.9), read_audio(original, 16000, start=0.5, end=0.9)
    )
    assert probe(broken).duration == probe(original).duration
    assert original.read_bytes() != broken.read_bytes()  # the repair is in memory only


def test_ogg_vorbis_repeating_a_different_setup_is_refused_with_the_reason(tmp_path):
    original = write_audio(tmp_path / "original.ogg", seconds=0.5, sample_rate=44100, channels=2)
    broken = write_ogg_repeated_headers(original, tmp_path / "changed.ogg", change_setup=True)
    with pytest.raises(MediaError, match="repeats its setup header with different contents"):
        read_audio(broken, 16000)


@pytest.mark.parametrize("suffix", [".flac", ".wav", ".mp3", ".ogg", ".m4a"])
def test_text_file_with_an_audio_name_is_a_media_error(tmp_path, suffix):
    """FLAC's demuxer accepts any file named .flac and gives a stream with no sample rate."""
    text = tmp_path / f"notes{suffix}"
    text.write_text("not audio at all\nsecond line\n")
    with pytest.raises(MediaError, match="not a readable media file"):
        read_audio(text, 16000)
    with pytest.raises(MediaError, match="not a readable media file"):
        probe(text)
