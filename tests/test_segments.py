"""The shared segment rules: exact multiples, short clips, tails, frame sampling."""

from __future__ import annotations

import pytest
from viml.engine.segments import frame_times, segment_bounds


def spans(start: float, end: float, **kwargs) -> list[tuple[float, float]]:
    return [(round(s.start, 6), round(s.end, 6)) for s in segment_bounds(start, end, **kwargs)]


def test_exact_multiples_give_whole_segments_only():
    assert spans(0, 30) == [(0, 10), (10, 20), (20, 30)]
    assert spans(0, 30.0000001) == [(0, 10), (10, 20), (20, 30)]  # float noise makes no fourth segment


def test_a_clip_shorter_than_a_segment_still_yields_one():
    assert spans(5, 8) == [(5, 8)]
    assert spans(0, 0.2) == [(0, 0.2)]


def test_a_tail_counts_only_from_half_a_segment():
    assert spans(0, 24) == [(0, 10), (10, 20)]
    assert spans(0, 25) == [(0, 10), (10, 20), (20, 25)]
    assert spans(0, 24, min_fraction=0.3) == [(0, 10), (10, 20), (20, 24)]


def test_segments_start_at_the_clip_in_point():
    assert spans(65, 95) == [(65, 75), (75, 85), (85, 95)]
    assert [s.index for s in segment_bounds(65, 95)] == [0, 1, 2]


def test_bad_spans_are_refused():
    with pytest.raises(ValueError):
        segment_bounds(10, 10)
    with pytest.raises(ValueError):
        segment_bounds(0, 10, segment_seconds=0)


def test_frames_at_6_fps_sit_at_frame_centres_inside_the_segment():
    segment = segment_bounds(0, 10)[0]
    times = frame_times(segment)
    assert len(times) == 60
    assert times[0] == pytest.approx(1 / 12) and times[-1] == pytest.approx(10 - 1 / 12)
    short = segment_bounds(0, 0.05)[0]
    assert frame_times(short) == [pytest.approx(0.025)]  # at least one frame, even for a sliver
