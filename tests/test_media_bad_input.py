"""Damaged and hostile inputs: whatever the bytes, `read_audio`, `probe` and `video_segment_frames`
raise MediaError (or succeed), never another exception."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media_factory import AUDIO_CODECS, VIDEO_CODECS, write_audio, write_random_bytes, write_video
from viml.core.errors import MediaError
from viml.engine.media import probe, read_audio, video_segment_frames

SUFFIXES = sorted(set(AUDIO_CODECS) | set(VIDEO_CODECS))


def outcomes(path) -> list[str]:
    """For each entry point: 'ok' or the MediaError reason; any other exception fails the test."""
    results = []
    for read in (
        lambda: read_audio(path, 16000),
        lambda: probe(path),
        lambda: video_segment_frames(path, short_side=16),
    ):
        try:
            read()
            results.append("ok")
        except MediaError as error:
            results.append(error.reason)
    return results


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_random_bytes_under_every_media_name(tmp_path, suffix):
    for seed, size in enumerate((1, 3, 100, 2000)):
        path = write_random_bytes(tmp_path / f"noise{seed}{suffix}", size=size, seed=seed)
        assert "ok" not in outcomes(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncated_headers_of_every_container(tmp_path, suffix):
    if suffix in VIDEO_CODECS:
        whole = write_video(tmp_path / f"whole{suffix}", seconds=0.6, fps=5, with_audio=True)
    else:
        whole = write_audio(tmp_path / f"whole{suffix}", seconds=0.6, sample_rate=22050, channels=2)
    data = whole.read_bytes()
    rng = np.random.default_rng(0)
    for cut in (4, 12, 44, 100, 300, len(data) // 3):
        cut_path = tmp_path / f"cut{cut}{suffix}"
        cut_path.write_bytes(data[:cut])
        outcomes(cut_path)
        noisy = tmp_path / f"noisy{cut}{suffix}"  # a header, then garbage
        noisy.write_bytes(data[:cut] + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        outcomes(noisy)


def test_video_with_an_unknown_codec(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", seconds=0.6, fps=5, with_audio=True)
    unknown = tmp_path / "unknown.mp4"
    unknown.write_bytes(clip.read_bytes().replace(b"avc1", b"zzzz"))  # the sample entry's codec tag
    assert av.open(str(unknown)).streams.video[0].codec_context is None
    with pytest.raises(MediaError, match="unknown or unsupported codec"):
        video_segment_frames(unknown)
    info = probe(unknown)  # the sound is still there
    assert info.has_audio and not info.has_video
    assert len(read_audio(unknown, 16000)) == pytest.approx(0.6 * 16000, rel=0.05)


def test_streams_without_samples(tmp_path):
    """Headers that announce a stream, with no sample or frame after them."""
    wav = tmp_path / "empty.wav"
    with av.open(str(wav), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000)
        container.start_encoding()
        container.mux(stream.encode(None))
    with pytest.raises(MediaError, match="no audio could be decoded"):
        read_audio(wav, 16000)
    avi = tmp_path / "empty.avi"
    with av.open(str(avi), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        container.mux(stream.encode(None))
    with pytest.raises(MediaError, match="video stream is empty"):
        video_segment_frames(avi)
    with pytest.raises(MediaError, match="no decodable frames"):
        probe(avi)
