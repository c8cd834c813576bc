"""OpenTimelineIO timelines that place a clip and the chosen music, for import into an editor.

V1 holds the clip (its source range is the in/out points), A1 the chosen music from its best start,
cut to the clip's length. Alternatives are left out, or kept as disabled tracks A2.. (muted in the
editor) so they can be auditioned in place. Everything is counted in frames of the clip's own rate
(24000/1001 stays exact), because editors cut on frames; every media reference carries the file's
real length (`available_range`), which the FCP XML / FCPXML / AAF adapters and MLT need.
Markers: the best part on each music clip (in the music file's time) and downbeats when known.
Writing to every format (.otio .xml .fcpxml .kdenlive .xges .aaf .edl) is in `timeline_formats`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from viml.core.errors import UserFacingError

# The rate of a timeline with no picture (a prompt-only search): the PAL/EBU frame rate.
DEFAULT_RATE = Fraction(25)
ALTERNATIVES = ("none", "muted")
# Frame rates a stream's measured average snaps to (within 0.01 %: 24000/1001 is only 0.1 % from 24).
_NTSC = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))
_SNAP = Fraction(1, 10000)
_FRAME_SLACK = Fraction(1, 100)


@dataclass
class MusicPlacement:
    path: str
    start: float  # seconds into the music file
    name: str | None = None
    duration: float | None = None  # the music file's length; probed from the file when None
    downbeats: Sequence[float] = field(default_factory=tuple)  # seconds into the music file


@dataclass(frozen=True)
class VideoTiming:
    duration: float  # seconds
    rate: Fraction  # the video stream's average frame rate


def video_timing(path: str | os.PathLike) -> VideoTiming:
    """The clip's length and exact frame rate, read with the project's media code (MediaError if unreadable)."""
    from viml.engine.media.container import container_duration, first_decodable, open_media

    with open_media(path) as container:
        stream = first_decodable(container, "video", path)
        measured = stream.average_rate or stream.guessed_rate
        if not measured:
            raise UserFacingError(f"{path}: its video stream has no frame rate; a timeline needs one")
        return VideoTiming(container_duration(container, path), exact_rate(Fraction(measured)))


def music_duration(path: str | os.PathLike) -> float:
    from viml.engine.media import probe

    return probe(path).duration


def exact_rate(measured: Fraction) -> Fraction:
    """A measured average rate as the rate editors know: 23.976.. -> 24000/1001, 25.0003 -> 25."""
    for candidate in (Fraction(round(measured)), *_NTSC):
        if candidate and abs(measured - candidate) <= candidate * _SNAP:
            return candidate
    return measured.limit_denominator(1001)


def build_timeline(
    music: list[MusicPlacement],
    clip_seconds: float,
    video: str | None = None,
    video_in: float = 0.0,
    rate: Fraction | float | None = None,
    name: str = "ViML suggestions",
    alternatives: str = "none",
    video_info: VideoTiming | None = None,
):
    """An otio.schema.Timeline: V1 = the clip (if any), A1 = music[0], A2.. disabled alternatives.

    rate: the timeline's frame rate; by default the clip's own (probed with `video_info`), else 25.
    alternatives: "none" leaves music[1:] out, "muted" adds them as disabled tracks.
    """
    import opentimelineio as otio

    if clip_seconds <= 0:
        raise UserFacingError("the clip must be longer than 0 s to place music against it")
    if alternatives not in ALTERNATIVES:
        raise UserFacingError(f"alternatives must be one of {', '.join(ALTERNATIVES)}, not {alternatives!r}")
    if video is not None and video_info is None:
        video_info = video_timing(video)
    rate = Fraction(rate) if rate is not None else (video_info.rate if video_info else DEFAULT_RATE)
    if rate <= 0:
        raise UserFacingError(f"the frame rate must be more than 0, got {float(rate):g}")
    fps = float(rate)  # what OTIO and its adapters expect: 24000/1001 as the nearest double

    def frames(seconds: float) -> int:
        return round(Fraction(seconds) * rate)

    def time_range(start: int, length: int):
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, fps), otio.opentime.RationalTime(length, fps)
        )

    def available(seconds: float):
        # Whole frames inside the file (an editor must never be pointed past its end); durations come
        # in microseconds, so 10.01 s at 24000/1001 is 240 frames, not 239.99...
        return time_range(0, math.floor(Fraction(seconds) * rate + _FRAME_SLACK))

    length = frames(clip_seconds)
    if length < 1:
        raise UserFacingError(f"the clip ({clip_seconds:g} s) is shorter than one frame at {fps:g} fps")
    timeline = otio.schema.Timeline(name=name)
    timeline.global_start_time = otio.opentime.RationalTime(0, fps)
    timeline.metadata["viml"] = {"rate": [rate.numerator, rate.denominator]}
    if video is not None:
        start = frames(video_in)
        reference = otio.schema.ExternalReference(
            target_url=_file_url(video), available_range=available(video_info.duration)
        )
        track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
        track.append(
            otio.schema.Clip(
                name=Path(video).name, media_reference=reference, source_range=time_range(start, length)
            )
        )
        timeline.tracks.append(track)
    placed = music if alternatives == "muted" else music[:1]
    for number, placement in enumerate(placed, 1):
        duration = placement.duration if placement.duration is not None else music_duration(placement.path)
        file_range = available(duration)
        start = frames(placement.start)
        clip_length = min(length, file_range.duration.to_frames() - start)
        if clip_length < 1:
            if number == 1:
                raise UserFacingError(
                    f"{placement.path}: the start {placement.start:g} s is at or past the music's end"
                )
            continue
        track = otio.schema.Track(name=f"A{number}", kind=otio.schema.TrackKind.Audio)
        track.enabled = number == 1
        clip = otio.schema.Clip(
            name=placement.name or Path(placement.path).name,
            media_reference=otio.schema.ExternalReference(
                target_url=_file_url(placement.path), available_range=file_range
            ),
            source_range=time_range(start, clip_length),
        )
        clip.metadata["viml"] = {"rank": number, "start_seconds": placement.start}
        _add_markers(clip, placement, fps)
        track.append(clip)
        timeline.tracks.append(track)
        if number == 1:
            _add_timeline_downbeats(timeline, clip, placement.downbeats)
    return timeline


def _add_markers(clip, placement: MusicPlacement, fps: float) -> None:
    """The best part (the placed range, so it stays visible when the clip is trimmed) and downbeats."""
    import opentimelineio as otio

    clip.markers.append(
        otio.schema.Marker(
            name="best part", marked_range=clip.source_range, color=otio.schema.MarkerColor.GREEN
        )
    )
    for beat in placement.downbeats:
        at = otio.opentime.RationalTime(beat * fps, fps)
        if clip.source_range.contains(at):
            clip.markers.append(
                otio.schema.Marker(
                    name="downbeat",
                    marked_range=otio.opentime.TimeRange(at, otio.opentime.RationalTime(0, fps)),
                    color=otio.schema.MarkerColor.YELLOW,
                )
            )


def _add_timeline_downbeats(timeline, clip, downbeats: Sequence[float]) -> None:
    """The chosen music's downbeats as timeline markers too: Kdenlive and Pitivi show only those."""
    import opentimelineio as otio

    fps = clip.source_range.start_time.rate
    for beat in downbeats:
        at = otio.opentime.RationalTime(beat * fps, fps)
        if clip.source_range.contains(at):
            timeline.tracks.markers.append(
                otio.schema.Marker(
                    name="downbeat",
                    marked_range=otio.opentime.TimeRange(
                        at - clip.source_range.start_time, otio.opentime.RationalTime(0, fps)
                    ),
                    color=otio.schema.MarkerColor.YELLOW,
                )
            )


def write_timeline(timeline, path: str | os.PathLike) -> None:
    """Write in the format the extension names (see `timeline_formats.FORMATS`), atomically."""
    from viml.catalog.timeline_formats import write

    write(timeline, path)


def _file_url(path: str) -> str:
    return Path(os.path.abspath(path)).as_uri()
