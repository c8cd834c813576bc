"""'Past edits' made from the demo world: projects a user might have cut, for `viml learn` to harvest.

Each project is a timeline of several shots, each a span of one piece's music video on V1 with that
piece's music under it on A1 at the same time in the song (the world's ground truth: the video was
drawn from its music). Between shots lie short black gaps, and the music may run into them (a lead-in
before the shot, a tail after it), never into the next shot's music: harvesting a project gives back
exactly its shots. A project takes its pieces from one split of the world only (train, val or test),
so the demo bundle's test pieces stay unseen in projects marked "test"; the hold-out unit of learning
is the project. Every piece is used once (`spans_per_piece` > 1 cuts more shots from it, in the same
project). The same edits are written in each format asked for (.otio, FCP7 .xml and .kdenlive by
default, each in its own folder, so harvesting one folder never sees an edit twice), with a
`past_edits.json` listing every project's shots and files.

    python -m viml.demo.past_edits [--world FOLDER] [--out FOLDER] [--projects N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from viml.catalog.otio_export import music_duration, video_timing
from viml.catalog.timeline_formats import FORMATS, write
from viml.core.errors import UserFacingError
from viml.core.paths import viml_home

MANIFEST = "past_edits.json"
DEFAULT_FORMATS = (".otio", ".xml", ".kdenlive")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Shot:
    piece: str
    video: str  # absolute path
    video_in: float  # seconds in the video file
    video_out: float
    music: str  # absolute path
    music_offset: float  # seconds in the music file where the shot's music starts
    at: float  # where the shot starts on the timeline
    lead: float  # music before the shot (over the gap before it)
    tail: float  # music after it


@dataclass
class Project:
    name: str
    split: str
    shots: list[Shot]
    files: dict[str, str] = field(default_factory=dict)  # suffix -> timeline file written


def plan_projects(
    world,
    seed: int = 0,
    shots_per_project: tuple[int, int] = (3, 6),
    shot_seconds: tuple[float, float] = (6.0, 12.0),
    spans_per_piece: int = 1,
    projects: int | None = None,
) -> list[Project]:
    """Projects over the world's pieces, each from one split; `projects` keeps the first N of each split's
    share (proportional), None keeps all. Times fall on the world's video frames."""
    if shots_per_project[0] < 1 or shots_per_project[0] > shots_per_project[1]:
        raise UserFacingError(f"shots per project must be 1 <= min <= max, got {shots_per_project}")
    if not 0 < shot_seconds[0] <= shot_seconds[1]:
        raise UserFacingError(f"shot lengths must be 0 < min <= max, got {shot_seconds}")
    rng = np.random.default_rng([seed, 17])
    fps = Fraction(world.fps)
    planned: list[Project] = []
    for split in SPLITS:
        pieces = list(world.split(split))
        # Each piece's spans as one group, so that all shots of a piece land in one project.
        groups = [
            _spans(world, pieces[i], spans_per_piece, shot_seconds, fps, rng)
            for i in rng.permutation(len(pieces))
        ]
        count = 0
        while groups:
            size = int(rng.integers(shots_per_project[0], shots_per_project[1] + 1))
            chosen, groups = groups[:size], groups[size:]
            planned.append(
                Project(f"{split}-{count:03d}", split, _lay_out([s for g in chosen for s in g], fps, rng))
            )
            count += 1
    if projects is not None:
        planned = _share(planned, projects)
    return planned


def _share(planned: list[Project], projects: int) -> list[Project]:
    """The first projects of each split, `projects` in all, each split's share as in `planned`
    (largest remainders; every split that has projects keeps one while there are enough)."""
    if projects < 1:
        raise UserFacingError(f"the number of projects must be at least 1, got {projects}")
    available = {s: sum(p.split == s for p in planned) for s in SPLITS}
    total = sum(available.values())
    if projects >= total:
        return planned
    exact = {s: projects * n / total for s, n in available.items()}
    keep = {s: int(x) for s, x in exact.items()}
    for s in sorted(SPLITS, key=lambda s: (keep[s] > 0, -(exact[s] - keep[s]))):
        if sum(keep.values()) < projects and keep[s] < available[s]:
            keep[s] += 1
    taken = dict.fromkeys(SPLITS, 0)
    out = []
    for project in planned:
        if taken[project.split] < keep[project.split]:
            taken[project.split] += 1
            out.append(project)
    return out


def _spans(world, piece, count: int, seconds: tuple[float, float], fps: Fraction, rng) -> list[tuple]:
    """Up to `count` spans of one piece that do not overlap: (piece, video, music, first frame, frames,
    the piece's frames)."""
    total = int(piece.seconds * fps)
    out, taken = [], []
    for _ in range(count):
        length = min(total, int(rng.uniform(*seconds) * fps))
        for _attempt in range(20):
            first = int(rng.integers(0, total - length + 1))
            if all(first + length <= a or first >= a + n for a, n in taken):
                taken.append((first, length))
                out.append((piece, world.video_path(piece), world.music_path(piece), first, length, total))
                break
    return out


def _lay_out(spans: list[tuple], fps: Fraction, rng) -> list[Shot]:
    """Shots one after another with 0-1 s gaps; music may reach into a gap, at most half of it."""
    gaps = [int(rng.integers(0, int(fps) + 1)) for _ in range(len(spans) + 1)]
    shots, position = [], gaps[0]
    for index, (piece, video, music, first, length, total) in enumerate(spans):
        lead = min(first, int(rng.integers(0, gaps[index] // 2 + 1)))
        tail = min(total - first - length, int(rng.integers(0, gaps[index + 1] // 2 + 1)))
        shots.append(
            Shot(
                piece=piece.id,
                video=str(Path(video).absolute()),
                video_in=float(first / fps),
                video_out=float((first + length) / fps),
                music=str(Path(music).absolute()),
                music_offset=float(first / fps),
                at=float(position / fps),
                lead=float(lead / fps),
                tail=float(tail / fps),
            )
        )
        position += length + gaps[index + 1]
    return shots


def build_edit(project: Project, rate: Fraction, lengths: dict[str, float]):
    """The project as an otio Timeline: V1 the shots, A1 their music; `lengths`: file -> seconds."""
    import opentimelineio as otio

    fps = float(rate)

    def frames(seconds: float) -> int:
        return round(Fraction(seconds).limit_denominator(100000) * rate)

    def time_range(start: int, length: int):
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, fps), otio.opentime.RationalTime(length, fps)
        )

    def reference(path: str):
        whole = int(Fraction(lengths[path]).limit_denominator(100000) * rate)
        return otio.schema.ExternalReference(
            target_url=Path(path).as_uri(), available_range=time_range(0, whole)
        )

    timeline = otio.schema.Timeline(name=project.name)
    timeline.global_start_time = otio.opentime.RationalTime(0, fps)
    timeline.metadata["viml"] = {"rate": [rate.numerator, rate.denominator], "world_split": project.split}
    picture = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    sound = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    picture_end = sound_end = 0
    for shot in project.shots:
        at, length = frames(shot.at), frames(shot.video_out) - frames(shot.video_in)
        if at > picture_end:
            picture.append(otio.schema.Gap(source_range=time_range(0, at - picture_end)))
        picture.append(otio.schema.Clip(
            name=Path(shot.video).name, media_reference=reference(shot.video),
            source_range=time_range(frames(shot.video_in), length)))  # fmt: skip
        picture_end = at + length
        lead, tail = frames(shot.lead), frames(shot.tail)
        if at - lead > sound_end:
            sound.append(otio.schema.Gap(source_range=time_range(0, at - lead - sound_end)))
        music_frames = reference(shot.music).available_range.duration.to_frames()
        tail = max(0, min(tail, music_frames - frames(shot.music_offset) - length))  # never past its end
        sound.append(otio.schema.Clip(
            name=Path(shot.music).name, media_reference=reference(shot.music),
            source_range=time_range(frames(shot.music_offset) - lead, lead + length + tail)))  # fmt: skip
        sound_end = at + length + tail
    timeline.tracks.extend([picture, sound])
    return timeline


def write_past_edits(
    world,
    folder: str | os.PathLike,
    seed: int = 0,
    formats: Sequence[str] = DEFAULT_FORMATS,
    projects: int | None = None,
    spans_per_piece: int = 1,
    progress: bool = False,
) -> list[Project]:
    """Plan the projects and write each in every format (folder/<format>/<project><suffix>), then the
    manifest. Returns the projects with the files written."""
    unknown = [s for s in formats if s not in FORMATS]
    if unknown:
        raise UserFacingError(
            f"unknown timeline formats {' '.join(unknown)}; use some of {' '.join(FORMATS)}"
        )
    folder = Path(folder)
    planned = plan_projects(world, seed=seed, spans_per_piece=spans_per_piece, projects=projects)
    rate = video_timing(world.video_path(world.pieces[0])).rate
    lengths: dict[str, float] = {}
    for project in planned:
        for shot in project.shots:
            if shot.video not in lengths:
                lengths[shot.video] = video_timing(shot.video).duration
            if shot.music not in lengths:
                lengths[shot.music] = music_duration(shot.music)
    for suffix in formats:
        (folder / suffix.lstrip(".")).mkdir(parents=True, exist_ok=True)
    for number, project in enumerate(planned, 1):
        timeline = build_edit(project, rate, lengths)
        for suffix in formats:
            target = folder / suffix.lstrip(".") / f"{project.name}{suffix}"
            write(timeline, target)
            project.files[suffix] = str(target.absolute())
        if progress:
            print(f"\r{number}/{len(planned)} projects", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    manifest = {
        "world": str(Path(world.root).absolute()),
        "seed": seed,
        "formats": list(formats),
        "projects": [asdict(p) for p in planned],
    }
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    temporary.replace(folder / MANIFEST)
    return planned


def load_past_edits(folder: str | os.PathLike) -> list[Project]:
    """The projects a `write_past_edits` run listed in its manifest."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
        return [
            Project(p["name"], p["split"], [Shot(**s) for s in p["shots"]], dict(p["files"]))
            for p in data["projects"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserFacingError(f"{path}: not a past-edits manifest ({error})") from error


def default_world() -> Path:
    """The world `viml demo` made (the newest, when there are several)."""
    worlds = sorted((viml_home() / "demo").glob("world-*/world.json"), key=lambda p: p.stat().st_mtime)
    if not worlds:
        raise UserFacingError("no demo world found: run `viml demo` first, or pass --world FOLDER")
    return worlds[-1].parent


def main(argv: Sequence[str] | None = None) -> int:
    from viml.demo.world.generate import load_world

    parser = argparse.ArgumentParser(
        prog="python -m viml.demo.past_edits", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--world", type=Path, help="a demo world folder (default: the one `viml demo` made)")
    parser.add_argument(
        "--out", type=Path, help="where to write (default: past-edits-<world> beside the world)"
    )
    parser.add_argument(
        "--projects", type=int, help="at most this many projects (default: every piece used once)"
    )
    parser.add_argument(
        "--spans-per-piece", type=int, default=1, help="shots cut from each piece (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", nargs="+", default=list(DEFAULT_FORMATS), help=f"of {' '.join(FORMATS)}")
    args = parser.parse_args(argv)
    try:
        world = load_world(args.world or default_world())
        out = args.out or Path(world.root).parent / f"past-edits-{Path(world.root).name}"
        planned = write_past_edits(
            world, out, args.seed, args.formats, args.projects, args.spans_per_piece, True
        )
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    shots = sum(len(p.shots) for p in planned)
    by_split = ", ".join(f"{sum(p.split == s for p in planned)} {s}" for s in SPLITS)
    print(f"{len(planned)} projects ({by_split}), {shots} shots, in {' '.join(args.formats)}: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
