"""Hostile audio (tests/hostile_media.py) decodes to the channel mean or fails with a reason; never crashes.

Each file is decoded in a child process: 8 or more channels used to kill the process (SIGSEGV in
PyAV's planar frame view), which here shows as a failed test.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import soxr
from hostile_media import channel_signal, decode_isolated, write_encoded, write_hostile_corpus, write_wav
from media_factory import write_audio
from viml.engine.media import read_audio


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {h.path.name: h for h in write_hostile_corpus(tmp_path_factory.mktemp("hostile"))}


def _expected_mean(path) -> np.ndarray:
    """The channel mean of what a lossless file holds, resampled as librosa.load does (soxr HQ)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        # Packed 32-bit float: one plane, safe for any channel count.
        convert = av.AudioResampler(format="flt", rate=rate)
        blocks = [
            f.to_ndarray().reshape(-1, f.layout.nb_channels)
            for frame in container.decode(stream)
            for f in convert.resample(frame)
        ]
    mean = np.concatenate(blocks).mean(axis=1, dtype=np.float32)
    return mean if rate == 16000 else soxr.resample(mean, rate, 16000, quality="HQ")


@pytest.mark.parametrize(
    "name",
    [
        *(f"pcm-{c}ch.wav" for c in (1, 2, 3, 6, 7, 8, 9, 12, 16, 24, 32, 64)),
        "mask-8ch-3.wav", "mask-16ch-3ffff.wav", "mask-4ch-ff.wav", "mask-6ch-0.wav",
        "mask-12ch-8000003f.wav", "float-16ch.wav", "surround-7.1.flac",
    ],
)  # fmt: skip
def test_any_channel_count_decodes_to_the_channel_mean(corpus, name):
    result = decode_isolated(corpus[name].path)
    assert "crash" not in result, result["crash"]
    assert "error" not in result, result["error"]
    samples = np.asarray(result["samples"], np.float32)
    expected = _expected_mean(corpus[name].path)
    assert len(samples) == len(expected)
    np.testing.assert_allclose(samples, expected, atol=1e-6)


def test_lossy_7_1_decodes_at_the_level_of_the_mean(corpus):
    result = decode_isolated(corpus["surround-7.1.m4a"].path)
    assert "crash" not in result and "error" not in result, result
    samples = np.asarray(result["samples"])
    mean = soxr.resample(channel_signal(8, 2 * 48000, 48000).mean(axis=0), 48000, 16000, quality="HQ")
    assert len(samples) == len(mean)
    # FFmpeg's own 7.1 -> mono matrix would weigh channels unevenly and drop the LFE: a different level.
    rms = float(np.sqrt(np.mean(samples[4000:-4000] ** 2)))
    assert rms == pytest.approx(float(np.sqrt(np.mean(mean[4000:-4000] ** 2))), rel=0.1)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("pcm-65ch.wav", "65 audio channels; at most 64"), ("rate-1hz.wav", "sample rate 1 Hz is below"),
     ("rate-3999hz.wav", "3999 Hz is below the minimum of 4000 Hz"),
     ("declares-10h.flac", "36000 s of audio (10.0 h), more than the limit of 14400 s (4 h)")],
)  # fmt: skip
def test_files_outside_the_limits_fail_fast_with_the_reason(corpus, name, reason):
    result = decode_isolated(corpus[name].path)  # before the limits: 4+ minutes and gigabytes, or a crash
    assert "crash" not in result, result["crash"]
    assert reason in result.get("error", ""), result


def _mean_then_soxr_as_before(path) -> np.ndarray:
    """The decoder as it was before the multichannel fix: planar float, mean over planes, soxr stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        to_float = av.AudioResampler(format="fltp", rate=rate)
        resampler = soxr.ResampleStream(rate, 16000, 1, dtype="float32", quality="HQ")
        chunks = []
        for frame in [*container.decode(stream), None]:
            for f in to_float.resample(frame):
                chunks.append(resampler.resample_chunk(f.to_ndarray().mean(axis=0, dtype=np.float32)))
        chunks.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        declared = float(stream.duration * stream.time_base)
    samples = np.concatenate(chunks)[: int(round(declared * 16000))]
    return np.clip(samples, -1, 1)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_stereo_and_5_1_decode_exactly_as_before(tmp_path, suffix):
    stereo = write_audio(tmp_path / f"stereo{suffix}", seconds=2, sample_rate=44100, channels=2)
    np.testing.assert_array_equal(read_audio(stereo, 16000), _mean_then_soxr_as_before(stereo))
    if suffix == ".flac":
        surround = write_audio(tmp_path / "surround.flac", seconds=2, sample_rate=48000, channels=6)
        np.testing.assert_array_equal(read_audio(surround, 16000), _mean_then_soxr_as_before(surround))


def test_wav_writer_round_trips(tmp_path):
    signal = channel_signal(2, 1600, 16000)
    samples = read_audio(write_wav(tmp_path / "two.wav", signal, 16000, sample_format="f32"), 16000)
    np.testing.assert_allclose(samples, signal.mean(axis=0), atol=1e-7)
    encoded = write_encoded(tmp_path / "two.flac", signal, 16000, "flac", "stereo")
    np.testing.assert_allclose(read_audio(encoded, 16000), signal.mean(axis=0), atol=1e-4)
