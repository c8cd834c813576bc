"""OpenTimelineIO timelines that place a clip and the chosen music, for import into an editor.

The timeline has a video track with the clip (its source range is the in/out points) and one audio
track with the music file from the chosen start, cut to the clip's length. Several suggestions become
several audio tracks (A1 the best), so they can be auditioned in place against the picture. Media references are absolute file URLs, which editors resolve reliably.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from viml.core.errors import UserFacingError

DEFAULT_RATE = 25.0


@dataclass
class MusicPlacement:
    path: str
    start: float  # seconds into the music file
    name: str | None = None
    duration: float | None = None  # the music file's length, when known


def build_timeline(
    music: list[MusicPlacement],
    clip_seconds: float,
    video: str | None = None,
    video_in: float = 0.0,
    rate: float = DEFAULT_RATE,
    name: str = "ViML suggestions",
):
    """An otio.schema.Timeline: V1 = the clip (if any), A1.. = the music placements, all clip-long."""
    import opentimelineio as otio

    if clip_seconds <= 0:
        raise UserFacingError("the clip must be longer than 0 s to place music against it")

    def time_range(start: float, length: float):
        return otio.opentime.TimeRange(
            otio.opentime.from_seconds(start, rate), otio.opentime.from_seconds(length, rate)
        )

    timeline = otio.schema.Timeline(name=name)
    timeline.global_start_time = otio.opentime.RationalTime(0, rate)
    if video is not None:
        track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
        track.append(
            otio.schema.Clip(
                name=Path(video).name,
                media_reference=otio.schema.ExternalReference(target_url=_file_url(video)),
                source_range=time_range(video_in, clip_seconds),
            )
        )
        timeline.tracks.append(track)
    for number, placement in enumerate(music, 1):
        length = clip_seconds
        if placement.duration is not None:
            length = max(0.0, min(clip_seconds, placement.duration - placement.start))
        if length <= 0:
            continue
        reference = otio.schema.ExternalReference(target_url=_file_url(placement.path))
        if placement.duration:
            reference.available_range = time_range(0.0, placement.duration)
        track = otio.schema.Track(name=f"A{number}", kind=otio.schema.TrackKind.Audio)
        clip = otio.schema.Clip(
            name=placement.name or Path(placement.path).name,
            media_reference=reference,
            source_range=time_range(placement.start, length),
        )
        clip.metadata["viml"] = {"rank": number, "start_seconds": placement.start}
        track.append(clip)
        timeline.tracks.append(track)
    return timeline


def write_timeline(timeline, path: str | os.PathLike) -> None:
    """Write .otio (native JSON) or any format an installed adapter handles (.fcpxml, .edl, ...)."""
    import opentimelineio as otio

    try:
        otio.adapters.write_to_file(timeline, os.fspath(path))
    except otio.exceptions.OTIOError as error:
        raise UserFacingError(f"cannot write the timeline to {path}: {error}") from error


def _file_url(path: str) -> str:
    return Path(os.path.abspath(path)).as_uri()
