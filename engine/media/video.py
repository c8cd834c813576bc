"""Video frames for the frame encoder: `fps` samples per fixed segment, small, upright, RGB.

One seek to the start, then a sequential threaded decode (seeking per sample is ~5× slower). Each
wanted time takes the frame whose presentation interval [pts, next pts) covers it, which is right for
variable frame rates too. Only picked frames are converted, already resized by swscale so the short
side is `short_side`, then turned upright by the rotation metadata: a clip's full-resolution frames
are never held.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from viml.core.errors import MediaError
from viml.engine.segments import (
    DEFAULT_FPS,
    DEFAULT_SEGMENT_SECONDS,
    Segment,
    frame_times,
    segment_bounds,
)

from .container import (
    clockwise_rotation,
    container_duration,
    decode_tolerantly,
    display_size,
    first_decodable,
    open_media,
    origin,
    stream_duration,
    truncation_tolerance,
)

DEFAULT_SHORT_SIDE = 224
# Beyond this many unreadable packets in a row the stream is treated as broken, not merely damaged.
_MAX_CONSECUTIVE_ERRORS = 50


@dataclass(frozen=True)
class SegmentFrames:
    segment: Segment
    times: np.ndarray  # float64 [N] wanted sample times, seconds (engine.segments.frame_times)
    source_times: np.ndarray  # float64 [N] presentation time of the frame picked for each sample
    frames: np.ndarray  # uint8 [N, H, W, 3] RGB, upright, short side = short_side


def video_segment_frames(
    path: str | os.PathLike,
    start: float = 0.0,
    end: float | None = None,
    fps: float = DEFAULT_FPS,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    short_side: int = DEFAULT_SHORT_SIDE,
) -> list[SegmentFrames]:
    """All segments of [start, end) (end None: the end of the video) with their sampled frames."""
    return list(iter_segment_frames(path, start, end, fps, segment_seconds, short_side))


def iter_segment_frames(
    path: str | os.PathLike,
    start: float = 0.0,
    end: float | None = None,
    fps: float = DEFAULT_FPS,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    short_side: int = DEFAULT_SHORT_SIDE,
) -> Iterator[SegmentFrames]:
    """Like `video_segment_frames`, one segment at a time (memory stays at one segment for long clips)."""
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"bad time range: start {start}, end {end}")
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    with open_media(path) as container:
        _refuse_audio_only(container, path)
        stream = first_decodable(container, "video", path)
        duration = stream_duration(container, stream) or container_duration(container, path)
        if duration <= 0:
            raise MediaError(path, "video stream is empty (0 s, no frames)")
        if start >= duration:
            raise MediaError(path, f"start {start:.2f} s is past the end of the video ({duration:.2f} s)")
        end = duration if end is None else min(end, duration)
        segments = segment_bounds(start, end, segment_seconds)
        stream.thread_type = "AUTO"  # frame + slice threads: the decode is the bottleneck
        if start > 0:
            zero = origin(container)
            container.seek(int((start + zero) / stream.time_base), stream=stream, backward=True)
        yield from _sample(container, stream, path, segments, fps, short_side, end)


def _refuse_audio_only(container, path: str | os.PathLike) -> None:
    """An audio file given as the video: say so. Its cover picture (a one-frame 'video' stream marked as
    an attached picture) is no video: decoding it would stop after one frame and read as truncated."""
    streams = container.streams
    if any(not stream.disposition & av.stream.Disposition.attached_pic for stream in streams.video):
        return
    only = ", only a cover picture" if streams.video else ""
    audio = " (an audio file?)" if streams.audio else ""
    raise MediaError(path, f"no video stream{only}{audio}; give a video clip")


def _sample(container, stream, path, segments, fps, short_side, end) -> Iterator[SegmentFrames]:
    zero = origin(container)
    fallback_step = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
    picker: _Picker | None = None
    previous: av.VideoFrame | None = None
    previous_time = 0.0
    for frame in _frames(container, stream, path):
        # A frame without a timestamp (rare, old AVI) follows its predecessor at the nominal rate.
        time = float(frame.time) - zero if frame.time is not None else previous_time + fallback_step
        if picker is None:
            picker = _Picker(segments, fps, _converter(frame, stream, short_side))
        if previous is not None:
            yield from picker.show(previous, previous_time, time)
            if picker.done:
                return
        previous, previous_time = frame, time
    if previous is None:
        raise MediaError(
            path, "video stream has no decodable frames (empty stream, or a corrupt or truncated file)"
        )
    shown_until = previous_time + max(_frame_seconds(previous), fallback_step)
    if end - shown_until > truncation_tolerance(end) + fallback_step:
        raise MediaError(path, f"truncated: video stops at {shown_until:.2f} s but the file says {end:.2f} s")
    # The last frame stays on screen to the end (as a player shows it).
    yield from picker.show(previous, previous_time, float("inf"))


class _Picker:
    """Hands decoded frames to the wanted sample times, segment after segment."""

    def __init__(self, segments: list[Segment], fps: float, convert) -> None:
        self.pending = deque((segment, frame_times(segment, fps)) for segment in segments)
        self.convert = convert
        self.images: list[np.ndarray] = []
        self.sources: list[float] = []

    @property
    def done(self) -> bool:
        return not self.pending

    def show(self, frame: av.VideoFrame, shown_from: float, shown_until: float) -> list[SegmentFrames]:
        """`frame` is on screen during [shown_from, shown_until): it serves every wanted time before the
        end (times before the first frame get the first frame). Returns the segments now complete."""
        image = None  # converted at most once, and only if some wanted time falls on it
        finished = []
        while self.pending:
            segment, times = self.pending[0]
            while len(self.images) < len(times) and times[len(self.images)] < shown_until:
                if image is None:
                    image = self.convert(frame)
                self.images.append(image)
                self.sources.append(shown_from)
            if len(self.images) < len(times):
                break
            finished.append(
                SegmentFrames(segment, np.array(times), np.array(self.sources), np.stack(self.images))
            )
            self.pending.popleft()
            self.images, self.sources = [], []
        return finished


def _frame_seconds(frame: av.VideoFrame) -> float:
    if frame.duration and frame.time_base is not None:
        return float(frame.duration * frame.time_base)
    return 0.0


def _converter(first: av.VideoFrame, stream, short_side: int):
    """Function frame -> upright RGB uint8 array, short side `short_side`, resized inside swscale."""
    rotation = clockwise_rotation(first, stream)
    shown_width, shown_height = display_size(first.width, first.height, stream.sample_aspect_ratio, rotation)
    scale = short_side / min(shown_width, shown_height)
    out_width = max(1, int(round(shown_width * scale)))
    out_height = max(1, int(round(shown_height * scale)))
    if rotation in (90, 270):  # resize in the coded orientation, then turn
        out_width, out_height = out_height, out_width
    quarter_turns = (-rotation // 90) % 4  # np.rot90 turns counter-clockwise

    def convert(frame: av.VideoFrame) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24", width=out_width, height=out_height, interpolation="BICUBIC")
        return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image

    return convert


def _frames(container, stream, path) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order; isolated corrupt packets are skipped, as players do."""
    return decode_tolerantly(container, stream, path, "video", _MAX_CONSECUTIVE_ERRORS)
