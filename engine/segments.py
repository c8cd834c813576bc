"""Fixed-length segments over a time span: the unit shared by video, music and ranking.

The paper cuts both video and music into 10 s segments. Rules, kept in this one place:
- segments start at `start`, every `segment_seconds`;
- a trailing remainder becomes a segment only if it is at least `min_fraction` of a segment long;
- a span shorter than one segment still yields exactly one (shorter) segment, so a 3 s clip is usable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_SEGMENT_SECONDS = 10.0
# Accepted segment lengths. Every segment gets at least one 3 s tagger patch, so below 1 s the work per
# second of audio explodes (0.0001 s segments: 10000 patches per second of music); above 10 minutes one
# segment's spectrogram would have to be held whole. `engine.media.limits` lists every limit.
MIN_SEGMENT_SECONDS = 1.0
MAX_SEGMENT_SECONDS = 600.0
DEFAULT_FPS = 6.0
# A tail shorter than half a segment carries too little content to stand on its own.
DEFAULT_MIN_FRACTION = 0.5
# Float tolerance so that 30.0000001 s still counts as exactly three 10 s segments.
_EPSILON = 1e-6


@dataclass(frozen=True)
class Segment:
    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def segment_bounds(
    start: float,
    end: float,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    min_fraction: float = DEFAULT_MIN_FRACTION,
) -> list[Segment]:
    """Split [start, end) into segments; see the module docstring for the rules."""
    if not MIN_SEGMENT_SECONDS <= segment_seconds <= MAX_SEGMENT_SECONDS:  # also refuses NaN
        raise ValueError(
            f"segment_seconds must be between {MIN_SEGMENT_SECONDS:g} and {MAX_SEGMENT_SECONDS:g} s, "
            f"got {segment_seconds}"
        )
    if not end > start:
        raise ValueError(f"empty span: start {start} >= end {end}")
    if not math.isfinite(end - start):
        raise ValueError(f"unbounded span: start {start}, end {end}")
    segments: list[Segment] = []
    position = start
    while position + segment_seconds <= end + _EPSILON:
        segments.append(Segment(len(segments), position, min(position + segment_seconds, end)))
        position += segment_seconds
    remainder = end - position
    if remainder > _EPSILON and (not segments or remainder >= min_fraction * segment_seconds - _EPSILON):
        segments.append(Segment(len(segments), position, end))
    return segments


def frame_times(segment: Segment, fps: float = DEFAULT_FPS) -> list[float]:
    """Sample times (seconds) at `fps` inside a segment, at frame centres; at least one per segment."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = max(1, int(round(segment.duration * fps)))
    step = segment.duration / count
    return [segment.start + (i + 0.5) * step for i in range(count)]
