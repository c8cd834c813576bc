"""Training pairs from past edits: every music clip with the picture it was cut to.

`harvest` reads timeline files (and folders of them) in every format `catalog.timeline_formats` knows
(.otio .xml .fcpxml .kdenlive .xges .aaf .edl) through the OpenTimelineIO adapters, and pairs each
music clip with the video that overlaps it in timeline time. The rules, each a decision:
- **Music** is an audio-track clip whose file has no moving picture (cover art does not count) and is
  not the file of a video clip on the same timeline: the sound of a video clip (its dialogue, a camera's
  sound) is not music, wherever it sits. An audio-only voice-over or sound effect cannot be told from
  music by the timeline; sound effects mostly fall under the minimum span.
- **The picture** at each moment is the topmost enabled video track's clip there (what the viewer saw;
  a track later in the stack lies on top). Titles and colour mattes (generators) are see-through;
  a clip whose file is missing still hides what is below it (its span is reported, not paired with the
  clip underneath).
- **One pair per stretch** where one music clip and one visible video clip play together, in each file's
  own time: `video_in`/`video_out` in the video, `music_offset` in the music (source ranges honoured,
  a file's start timecode taken off). Pieces of one file cut apart without moving their source
  (a razor cut) are one clip again, so are one song's stereo halves on two tracks.
- **Shorter than `min_seconds`** (2 s; the ViML segment is 10 s) a stretch says too little: reported.
- **Two music clips at once** (a crossfade, a layered bed): the stretch they share is left out of both,
  which one the picture was cut to is unknowable; each keeps what it plays alone. Reported.
- **Speed changes and freezes** break the pairing of picture and music time: such clips are reported.
- **Muted tracks and disabled clips** did not play in the edit: reported, not used.
- **The same edit in several files** (an .otio and its .xml export): counted once, the later reported.
Nothing here is fatal: an unreadable timeline, a missing file or an odd clip becomes a `Skipped` with a
reason and the rest carries on. Media that moved are relinked (`learning.relink`); each relink is listed.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from viml.catalog.store import Catalog
from viml.catalog.timeline_formats import FORMATS, _one_line, format_for
from viml.core.errors import UserFacingError
from viml.core.paths import special_file_problem
from viml.learning.pairs import EditPair, Skipped
from viml.learning.relink import Located, MediaFacts, MediaFinder, Relink

MIN_SECONDS = 2.0
# Two harvested edits are the same when every pair agrees within this (a frame at 20 fps and above).
_SAME_EDIT_SECONDS = 0.05
_DEFAULT_TOLERANCE = 0.5 / 120  # half a frame at the fastest rate editors use


@dataclass
class Harvest:
    """What `harvest` found. Unpacks as `pairs, skipped = harvest(...)`."""

    pairs: list[EditPair] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    relinks: list[Relink] = field(default_factory=list)
    timelines: list[str] = field(default_factory=list)  # the timeline files read (the projects)

    def __iter__(self):
        yield self.pairs
        yield self.skipped

    @property
    def projects(self) -> list[str]:
        """The projects that gave at least one pair, in reading order."""
        return list(dict.fromkeys(pair.project for pair in self.pairs))

    def as_dict(self) -> dict:
        return {
            "pairs": [p.as_dict() for p in self.pairs],
            "skipped": [s.as_dict() for s in self.skipped],
            "relinks": [r.as_dict() for r in self.relinks],
            "timelines": list(self.timelines),
        }


def harvest(
    paths: Sequence[str | os.PathLike],
    catalog: Catalog | None,
    search_path: Sequence[str | os.PathLike] = (),
    min_seconds: float = MIN_SECONDS,
) -> Harvest:
    """Training pairs from timeline files and folders of them (searched recursively)."""
    finder = MediaFinder(catalog, [Path(p) for p in search_path])
    files, result = timeline_files(paths)
    harvested: list[tuple[str, list[EditPair]]] = []
    for file in files:
        project = str(file)
        result.timelines.append(project)
        try:
            timelines = read_timelines(file)
        except UserFacingError as error:
            result.skipped.append(Skipped(project, file.name, str(error)))
            continue
        pairs: list[EditPair] = []
        skipped: list[Skipped] = []
        relinks: list[Relink] = []
        located: dict[str, Located] = {}
        for timeline in timelines:
            label = f"{timeline.name}: " if len(timelines) > 1 and timeline.name else ""
            try:
                _Edit(timeline, project, file.parent, finder, min_seconds, label, located).harvest(
                    pairs, skipped, relinks
                )
            except Exception as error:  # an adapter's odd object model; one timeline must not stop the rest
                why = f"cannot read its {timeline.name or 'timeline'}: {type(error).__name__}: {error}"
                skipped.append(Skipped(project, file.name, why))
        same = next((other for other, earlier in harvested if _same_edit(earlier, pairs)), None)
        if same is not None:
            result.skipped.append(
                Skipped(project, file.name, f"the same edit as {same}: counted once ({len(pairs)} pairs)")
            )
            continue
        harvested.append((project, pairs))
        result.pairs += pairs
        result.skipped += skipped
        result.relinks += relinks
    return result


def timeline_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], Harvest]:
    """The timeline files named or found under folders (sorted), and a Harvest holding what was not one."""
    found: dict[Path, None] = {}
    result = Harvest()
    for given in paths:
        path = Path(given).expanduser().absolute()
        problem = special_file_problem(str(path), folder_ok=True) if path.exists() else None
        if problem is not None:  # a FIFO, a device, /proc: opening it could block the whole harvest
            result.skipped.append(Skipped(str(path), path.name, problem.removeprefix(f"{path}: ")))
        elif path.is_dir():
            inside = _walk_timelines(path, result.skipped)
            if not inside:
                suffixes = " ".join(FORMATS)
                result.skipped.append(
                    Skipped(str(path), path.name, f"no timeline file ({suffixes}) in this folder")
                )
            found.update(dict.fromkeys(inside))
        elif path.is_file():
            if path.suffix.lower() in FORMATS:
                found[path] = None
            else:
                why = f"not a timeline: {path.suffix or 'no extension'} is not one of {' '.join(FORMATS)}"
                result.skipped.append(Skipped(str(path), path.name, why))
        else:
            result.skipped.append(Skipped(str(path), path.name, "no such file or folder"))
    return list(found), result


def read_timelines(path: Path) -> list:
    """The OTIO timelines in a file (an FCP7 XML or AAF file can hold several); UserFacingError if none."""
    import opentimelineio as otio

    fmt = format_for(path)
    try:
        otio.adapters.from_name(fmt.adapter)
    except Exception as error:  # NotSupportedError when the plugin is not installed
        raise UserFacingError(
            f"reading {fmt.suffix} needs the {fmt.package} package: pip install {fmt.package}"
        ) from error
    try:
        # The Kdenlive adapter prints a deprecation notice; adapters warn about what they skip.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read = otio.adapters.read_from_file(str(path), adapter_name=fmt.adapter)
    except Exception as error:  # adapters raise anything from ValueError to their own types
        raise UserFacingError(f"cannot read it as {fmt.label}: {_one_line(error)}") from error
    if isinstance(read, otio.schema.Timeline):
        return [read]
    timelines = (
        list(read.find_children(descended_from_type=otio.schema.Timeline))
        if hasattr(read, "find_children")
        else []
    )
    if not timelines:
        raise UserFacingError(f"it holds no timeline ({fmt.label})")
    return timelines


@dataclass
class _Placed:
    """One clip where the edit put it: timeline seconds, and its file's own time at `start`."""

    kind: str  # "Video" | "Audio"
    layer: int  # the track's place in the stack: higher lies on top
    name: str
    reference: str | None  # path, URL or file name of the media; None for a generator (title, colour)
    start: float
    end: float
    source: float
    expected: float | None  # the media's length as the timeline records it
    speed_changed: bool
    path: Path | None = None  # the file after relinking

    @property
    def offset(self) -> float:
        """File time minus timeline time."""
        return self.source - self.start


@dataclass
class _Run:
    """Stretches of timeline time where one file plays with one alignment (`offset`)."""

    path: Path
    offset: float
    name: str
    spans: list[tuple[float, float]]
    paired: bool = True  # False: it plays (and takes its stretch from others) but makes no pairs


class _Edit:
    def __init__(self, timeline, project: str, folder: Path, finder: MediaFinder, min_seconds: float, label: str,
                 located: dict[str, Located]) -> None:  # fmt: skip
        self.timeline = timeline
        self.project = project
        self.folder = folder
        self.finder = finder
        self.min_seconds = min_seconds
        self.label = label
        self.located = located  # shared by the timelines of one file: each relink and miss reported once
        self.tolerance = _DEFAULT_TOLERANCE

    def skip(self, what: str, why: str) -> Skipped:
        return Skipped(self.project, f"{self.label}{what}", why)

    def harvest(self, pairs: list[EditPair], skipped: list[Skipped], relinks: list[Relink]) -> None:
        placed = self._placed(skipped)
        if not placed:
            skipped.append(self.skip(self.timeline.name or "timeline", "no clips on the timeline"))
            return
        usable = self._locate(placed, skipped, relinks)
        music, own_sound = self._music(usable, skipped)
        if not music:
            audio = [p for p in placed if p.kind == "Audio"]
            why = ("its audio tracks hold only the videos' own sound" if own_sound else
                   "its audio tracks hold no playable clip" if audio else "it has no audio clip")  # fmt: skip
            if not any(p.kind == "Audio" and p.path is None for p in placed):
                skipped.append(
                    self.skip(self.timeline.name or "timeline", f"no music on the timeline: {why}")
                )
            return
        runs = self._music_runs(music, skipped)
        pictures = self._pictures(placed, skipped)
        any_picture = [(p.start, p.end) for p in placed if p.kind == "Video" and p.reference is not None]
        for run in runs:
            for start, end in run.spans:
                for picture in pictures:
                    for p_start, p_end in picture.spans:
                        a, b = max(start, p_start), min(end, p_end)
                        if b - a > self.tolerance:
                            self._pair(picture, run, a, b, pairs, skipped)
            if run.spans and not _intersect(run.spans, any_picture):
                skipped.append(self.skip(run.name, "no video plays over it on the timeline"))

    def _placed(self, skipped: list[Skipped]) -> list[_Placed]:
        import opentimelineio as otio

        stack = self.timeline.tracks
        placed = []
        rates = []
        for layer, track in enumerate(stack):
            if track.kind not in (otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio):
                continue
            clips = list(track.find_clips())
            if not track.enabled:
                if clips:
                    name = track.name or f"{track.kind} track {layer + 1}"
                    skipped.append(
                        self.skip(name, f"muted track: its {len(clips)} clips did not play in the edit")
                    )
                continue
            for clip in clips:
                if not clip.enabled:
                    skipped.append(self.skip(clip.name, "disabled in the edit"))
                    continue
                item = self._one(clip, str(track.kind), layer, stack, skipped)
                if item is not None:
                    placed.append(item)
                    rates.append(clip.trimmed_range().duration.rate)
        if rates:
            self.tolerance = 0.5 / max(rates)
        return placed

    def _one(self, clip, kind: str, layer: int, stack, skipped: list[Skipped]) -> _Placed | None:
        import opentimelineio as otio

        reference = clip.media_reference
        if isinstance(reference, otio.schema.ImageSequenceReference):
            skipped.append(self.skip(clip.name, "an image sequence: only video and audio files are read"))
            return None
        trimmed = clip.trimmed_range()
        where = clip.transformed_time_range(trimmed, stack)
        available = getattr(reference, "available_range", None)
        origin = available.start_time.to_seconds() if available is not None else 0.0
        expected = available.duration.to_seconds() if available is not None else None
        if isinstance(reference, otio.schema.GeneratorReference):
            target = None
        elif isinstance(reference, otio.schema.ExternalReference) and reference.target_url:
            target = reference.target_url
        else:  # a MissingReference (an EDL without source paths, an AAF without locators): go by name
            target = next(
                (n for n in (reference.name if reference else "", clip.name) if n and Path(n).suffix), None
            )
            if target is None:
                skipped.append(self.skip(clip.name or "a clip", "the timeline names no file for it"))
                return None
        timing = [e for e in clip.effects if isinstance(e, otio.schema.TimeEffect)]
        speed_changed = any(
            not isinstance(e, otio.schema.LinearTimeWarp) or e.time_scalar != 1 for e in timing
        )
        start = where.start_time.to_seconds()
        return _Placed(
            kind=kind,
            layer=layer,
            name=clip.name or (Path(target).name if target else "a clip"),
            reference=target,
            start=start,
            end=start + where.duration.to_seconds(),
            source=trimmed.start_time.to_seconds() - origin,
            expected=expected if expected and expected > 0 else None,
            speed_changed=speed_changed,
        )

    def _locate(self, placed: list[_Placed], skipped: list[Skipped], relinks: list[Relink]) -> list[_Placed]:
        """Relinks each clip's file (each relink and each miss reported once per project)."""
        pictures = {p.reference for p in placed if p.kind == "Video"}
        usable = []
        for item in placed:
            if item.reference is None:
                continue
            first = item.reference not in self.located
            if first:
                self.located[item.reference] = self.finder.locate(item.reference, self.folder, item.expected)
            found = self.located[item.reference]
            if found.path is None:
                # The sound of a missing video is not music: the video's own miss says it once.
                if first and (item.kind == "Video" or item.reference not in pictures):
                    what = "video" if item.kind == "Video" else "audio"
                    skipped.append(self.skip(item.name, f"{what} file not found: {found.why}"))
                continue
            if first and found.how:
                relinks.append(Relink(self.project, item.reference, str(found.path), found.how))
            item.path = found.path
            usable.append(item)
        return usable

    def _music(self, usable: list[_Placed], skipped: list[Skipped]) -> tuple[list[_Placed], bool]:
        """The music clips, and whether any audio clip was a video's own sound."""
        picture_files = {p.path for p in usable if p.kind == "Video"}
        music, own_sound = [], False
        for item in usable:
            if item.kind != "Audio":
                continue
            facts = self.finder.facts(item.path)
            if isinstance(facts, str):
                skipped.append(self.skip(item.name, f"cannot read {item.path}: {facts}"))
            elif facts.has_picture or item.path in picture_files:
                own_sound = True
            else:
                music.append(item)
        return music, own_sound

    def _music_runs(self, music: list[_Placed], skipped: list[Skipped]) -> list[_Run]:
        """Each music alignment's stretches, less those where another music plays too."""
        runs: list[_Run] = []
        for item in sorted(music, key=lambda m: (m.start, m.layer)):
            run = None if item.speed_changed else self._run_of(runs, item)
            if run is None:
                run = _Run(item.path, item.offset, item.name, [])
                runs.append(run)
            run.spans = _union([*run.spans, (item.start, item.end)], self.tolerance)
            if item.speed_changed:
                skipped.append(
                    self.skip(item.name, "its speed is changed: picture and music time no longer match")
                )
                run.paired = False
        alone = []
        for index, run in enumerate(runs):
            others = _union(
                [s for other in runs[:index] + runs[index + 1 :] for s in other.spans], self.tolerance
            )
            for later in runs[index + 1 :]:
                shared = _intersect(run.spans, later.spans)
                seconds = sum(b - a for a, b in shared)
                if seconds > self.tolerance:
                    skipped.append(self.skip(f"{run.name} and {later.name}", (
                        f"play together for {seconds:.1f} s from {shared[0][0]:.1f} s on the timeline: that stretch "
                        "is left out of both (which one the picture was cut to cannot be told)")))  # fmt: skip
            if run.paired:
                alone.append(
                    _Run(run.path, run.offset, run.name, _subtract(run.spans, others, self.tolerance))
                )
        return alone

    def _run_of(self, runs: list[_Run], item: _Placed) -> _Run | None:
        """The run `item` continues: the same file at the same alignment (within half a frame)."""
        same = (
            r
            for r in runs
            if r.paired and r.path == item.path and abs(r.offset - item.offset) <= self.tolerance
        )
        return next(same, None)

    def _pictures(self, placed: list[_Placed], skipped: list[Skipped]) -> list[_Run]:
        """What the viewer saw: each visible stretch of the topmost clip, by file and alignment."""
        covered: list[tuple[float, float]] = []
        visible: list[tuple[_Placed, list[tuple[float, float]]]] = []
        for layer in sorted({p.layer for p in placed if p.kind == "Video"}, reverse=True):
            clips = [p for p in placed if p.kind == "Video" and p.layer == layer and p.reference is not None]
            for item in clips:
                visible.append((item, _subtract([(item.start, item.end)], covered, self.tolerance)))
            covered = _union(covered + [(p.start, p.end) for p in clips], self.tolerance)
        runs: list[_Run] = []
        for item, spans in visible:
            if item.path is None or not spans:
                continue  # a missing file (reported) still hid the clips below it
            facts = self.finder.facts(item.path)
            if isinstance(facts, str):
                skipped.append(self.skip(item.name, f"cannot read {item.path}: {facts}"))
                continue
            if not facts.has_picture:
                skipped.append(self.skip(item.name, f"{item.path} has no picture: it sits on a video track"))
                continue
            if item.speed_changed:
                skipped.append(
                    self.skip(item.name, "its speed is changed: picture and music time no longer match")
                )
                continue
            run = self._run_of(runs, item)
            if run is None:
                runs.append(_Run(item.path, item.offset, item.name, list(spans)))
            else:  # pieces of one shot cut apart in place join up again
                run.spans = _union(run.spans + spans, self.tolerance)
        return runs

    def _pair(
        self, picture: _Run, music: _Run, a: float, b: float, pairs: list[EditPair], skipped: list[Skipped]
    ) -> None:
        what = f"{picture.name} with {music.name}"
        if b - a < self.min_seconds:
            skipped.append(self.skip(what, (
                f"only {b - a:.1f} s together at {a:.1f} s on the timeline (the least is {self.min_seconds:g} s)")))  # fmt: skip
            return
        video_in, music_in = a + picture.offset, a + music.offset
        for path, start, kind in ((picture.path, video_in, "video"), (music.path, music_in, "music")):
            facts = self.finder.facts(path)
            seconds = facts.seconds if isinstance(facts, MediaFacts) else float("inf")
            if start < -self.tolerance or start + (b - a) > seconds + 2 * self.tolerance + 0.05:
                skipped.append(self.skip(what, (
                    f"the {kind} span {max(start, 0):.2f}-{start + b - a:.2f} s lies outside {path.name} ({seconds:.2f} s): "
                    "another file of that name, or a start timecode the timeline does not record")))  # fmt: skip
                return
        pairs.append(
            EditPair(
                project=self.project,
                video=str(picture.path),
                video_in=round(max(video_in, 0.0), 6),
                video_out=round(max(video_in, 0.0) + (b - a), 6),
                music=str(music.path),
                music_offset=round(max(music_in, 0.0), 6),
            )
        )


def _union(spans: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + tolerance:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = [(max(s, t), min(e, f)) for s, e in a for t, f in b]
    return sorted((s, e) for s, e in out if e > s)


def _subtract(
    spans: list[tuple[float, float]], cut: list[tuple[float, float]], tolerance: float
) -> list[tuple[float, float]]:
    out = []
    for start, end in spans:
        pieces = [(start, end)]
        for c_start, c_end in cut:
            pieces = [p for s, e in pieces for p in ((s, min(e, c_start)), (max(s, c_end), e))]
        out += [(s, e) for s, e in pieces if e - s > tolerance]
    return out


def _same_edit(earlier: list[EditPair], pairs: list[EditPair]) -> bool:
    if not pairs or len(earlier) != len(pairs):
        return False

    def key(pair: EditPair):
        return (pair.video, pair.music, pair.video_in)

    return all(
        (a.video, a.music) == (b.video, b.music)
        and max(
            abs(a.video_in - b.video_in), abs(a.video_out - b.video_out), abs(a.music_offset - b.music_offset)
        )
        <= _SAME_EDIT_SECONDS
        for a, b in zip(sorted(earlier, key=key), sorted(pairs, key=key), strict=True)
    )


def _walk_timelines(folder: Path, skipped: list[Skipped]) -> list[Path]:
    """Timeline files under `folder` (hidden ones left out); one named like a timeline that is not a
    regular file (a FIFO would block its reader forever) goes to `skipped` unopened."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in FORMATS:
                continue
            problem = special_file_problem(str(path))
            if problem is not None:
                skipped.append(Skipped(str(path), path.name, problem.removeprefix(f"{path}: ")))
                continue
            if path.suffix.lower() == ".xml" and not _is_fcp7(path):
                continue  # any program writes .xml: only FCP7 interchange files are timelines
            found.append(path)
    return sorted(found)


def _is_fcp7(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"<xmeml" in handle.read(4096)
    except OSError:
        return False
