"""A training pair harvested from a past edit: the video a music clip was cut to, and where in the music.

`learning/harvest.py` reads them from timelines (and from used marks in the catalog); `learning/train.py`
turns them into features and a fine-tuned bundle. Times are seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EditPair:
    project: str  # the timeline file it came from (or "marks:<catalog>" for used marks): the hold-out unit
    video: str  # absolute path of the video file, after relinking
    video_in: float  # the overlapped span in the video file's own time (source range, not timeline time)
    video_out: float
    music: str  # absolute path of the music file, after relinking
    music_offset: float  # where in the music file the overlapped span starts
    source: str = "timeline"  # "timeline" | "marks"

    @property
    def seconds(self) -> float:
        return self.video_out - self.video_in

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    project: str
    what: str  # the clip or file it is about, as the timeline names it
    why: str  # a sentence a user can act on

    def as_dict(self) -> dict:
        return asdict(self)
