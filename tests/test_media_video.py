"""Video frames per segment: containers, segment edge cases, VFR, rotation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from media_factory import (
    VIDEO_CODECS,
    marker_corner,
    read_frame_index,
    vfr_frame_times,
    write_audio,
    write_random_bytes,
    write_truncated,
    write_video,
    write_zero_bytes,
)
from viml.core.errors import MediaError
from viml.engine.media import iter_segment_frames, probe, read_audio, video_segment_frames
from viml.engine.segments import frame_times, segment_bounds


def picked_indexes(segment_frames) -> list[int]:
    return [read_frame_index(frame) for frame in segment_frames.frames]


def constant_rate_index(time: float, fps: float) -> int:
    """Index of the constant-rate frame on screen at `time`."""
    return int(math.floor(time * fps + 1e-9))


@pytest.mark.parametrize("suffix", sorted(VIDEO_CODECS))
def test_decode_each_container(tmp_path, suffix):
    path = write_video(tmp_path / f"clip{suffix}", seconds=3, fps=10, with_audio=True)
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(3, abs=0.1)

    segments = video_segment_frames(path, fps=6, segment_seconds=1.0, short_side=32)
    assert [s.segment for s in segments] == segment_bounds(0, 3, 1.0)
    for segment_frames in segments:
        assert segment_frames.frames.dtype == np.uint8
        assert segment_frames.frames.shape == (6, 32, 43, 3)  # 64x48 with short side 32
        assert list(segment_frames.times) == frame_times(segment_frames.segment, 6)
        assert picked_indexes(segment_frames) == [constant_rate_index(t, 10) for t in segment_frames.times]
    # The soundtrack of the same file decodes too (1 s at 8 kHz per second of video).
    assert len(read_audio(path, 8000)) == pytest.approx(3 * 8000, rel=0.03)


def test_clip_shorter_than_a_segment_yields_one_segment(tmp_path):
    path = write_video(tmp_path / "short.mp4", seconds=2.5, fps=10)
    (only,) = video_segment_frames(path, short_side=24)  # default 10 s segments, 6 fps
    assert only.segment.start == 0 and only.segment.end == pytest.approx(2.5)
    assert len(only.frames) == 15
    assert picked_indexes(only) == [constant_rate_index(t, 10) for t in only.times]


def test_very_short_clip(tmp_path):
    path = write_video(tmp_path / "blink.mp4", seconds=0.2, fps=10)
    (only,) = video_segment_frames(path, short_side=24)
    assert len(only.frames) == 1 and picked_indexes(only) == [1]  # sample at 0.1 s shows frame 1


def test_exact_multiple_of_segment_length(tmp_path):
    path = write_video(tmp_path / "three.mkv", seconds=3, fps=5)
    segments = video_segment_frames(path, fps=4, segment_seconds=1.0, short_side=24)
    assert [(s.segment.start, s.segment.end) for s in segments] == [(0, 1), (1, 2), (2, 3)]
    assert [len(s.frames) for s in segments] == [4, 4, 4]


def test_sub_range_seeks_once_and_picks_the_right_frames(tmp_path):
    # Start 2.33 keeps every sample time off the 0.1 s frame boundaries (no float ties).
    path = write_video(tmp_path / "long.mp4", seconds=6, fps=10)
    segments = video_segment_frames(path, start=2.33, end=5.1, fps=6, segment_seconds=1.0, short_side=24)
    assert [s.segment for s in segments] == segment_bounds(2.33, 5.1, 1.0)
    for segment_frames in segments:
        assert picked_indexes(segment_frames) == [constant_rate_index(t, 10) for t in segment_frames.times]


def test_variable_frame_rate_picks_the_frame_on_screen(tmp_path):
    path = write_video(tmp_path / "vfr.mkv", seconds=3, vfr=True)
    starts = vfr_frame_times(3)
    for segment_frames in video_segment_frames(path, fps=6, segment_seconds=1.0, short_side=24):
        expected = [max(i for i, s in enumerate(starts) if s <= t + 1e-9) for t in segment_frames.times]
        assert picked_indexes(segment_frames) == expected
        assert list(segment_frames.source_times) == pytest.approx([starts[i] for i in expected], abs=1e-3)


@pytest.mark.parametrize(
    ("rotation", "corner"), [(90, "top-right"), (180, "bottom-right"), (270, "bottom-left")]
)
def test_rotation_metadata_is_applied(tmp_path, rotation, corner):
    path = write_video(tmp_path / "phone.mov", seconds=1, fps=10, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((48, 64) if rotation != 180 else (64, 48))
    (only,) = video_segment_frames(path, short_side=24)
    expected_shape = (32, 24, 3) if rotation != 180 else (24, 32, 3)
    assert only.frames.shape[1:] == expected_shape
    assert marker_corner(only.frames[0]) == corner
    assert picked_indexes(only) == [constant_rate_index(t, 10) for t in only.times]


def test_unrotated_marker_stays_top_left(tmp_path):
    path = write_video(tmp_path / "plain.mp4", seconds=0.5, fps=10)
    (only,) = video_segment_frames(path, short_side=24)
    assert marker_corner(only.frames[0]) == "top-left"


def test_no_audio_track(tmp_path):
    path = write_video(tmp_path / "silent.mp4", seconds=1, fps=10)
    info = probe(path)
    assert info.has_video and not info.has_audio and info.sample_rate is None
    assert len(video_segment_frames(path, short_side=24)) == 1
    with pytest.raises(MediaError, match="no audio stream"):
        read_audio(path, 16000)


def test_audio_only_has_no_video(tmp_path):
    path = write_audio(tmp_path / "song.m4a", seconds=1)
    info = probe(path)
    assert info.has_audio and not info.has_video and info.width is None
    with pytest.raises(MediaError, match="no video stream"):
        video_segment_frames(path)


def test_iter_yields_segment_by_segment(tmp_path):
    path = write_video(tmp_path / "clip.webm", seconds=3, fps=10)
    iterator = iter_segment_frames(path, segment_seconds=1.0, short_side=24)
    first = next(iterator)
    assert first.segment.index == 0 and len(first.frames) == 6
    assert [s.segment.index for s in iterator] == [1, 2]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_video_is_an_error(tmp_path, suffix):
    whole = write_video(tmp_path / f"whole{suffix}", seconds=4, fps=10, with_audio=True)
    cut = write_truncated(whole, tmp_path / f"cut{suffix}", keep=0.5)
    with pytest.raises(MediaError, match="truncated"):
        video_segment_frames(cut, short_side=24)


def test_unreadable_inputs_raise_media_error(tmp_path):
    cases = {
        "empty file": write_zero_bytes(tmp_path / "empty.mp4"),
        "not a readable media file": write_random_bytes(tmp_path / "noise.mp4"),
        "file not found": tmp_path / "missing.mp4",
        "is a folder": tmp_path,
    }
    for reason, path in cases.items():
        for call in (probe, video_segment_frames, lambda p: read_audio(p, 16000)):
            with pytest.raises(MediaError, match=reason) as caught:
                call(path)
            assert caught.value.path == str(path)


def test_start_past_the_end_and_bad_arguments(tmp_path):
    path = write_video(tmp_path / "clip.mp4", seconds=1, fps=10)
    with pytest.raises(MediaError, match="past the end"):
        video_segment_frames(path, start=5)
    with pytest.raises(ValueError):
        video_segment_frames(path, start=0.5, end=0.5)
    with pytest.raises(ValueError):
        video_segment_frames(path, short_side=0)


def test_end_beyond_the_file_is_clipped(tmp_path):
    path = write_video(tmp_path / "clip.mp4", seconds=2, fps=10)
    segments = video_segment_frames(path, end=30, segment_seconds=1.0, short_side=24)
    assert [s.segment.end for s in segments] == [1, 2]
