"""`viml suggest [VIDEO] --in T --out T [--prompt TEXT]`: rank catalogued music for a clip and/or a prompt."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from viml.cli._args import fraction, number, output_file, positive_count
from viml.cli.scan import add_catalog_arguments
from viml.core.errors import UserFacingError
from viml.search.defaults import MEANING_WEIGHT, POOLINGS, WORDS_WEIGHT

if TYPE_CHECKING:
    from viml.search import Filters, SuggestRequest

ORDER = 30
non_negative = number(0.0)


def parse_time(text: str) -> float:
    """Seconds from '75', '75.5', '1:15', '01:01:15.5' (search/like.py reads TRACK@OFFSET the same way)."""
    from viml.search.like import parse_seconds

    try:
        return parse_seconds(text)
    except UserFacingError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_range(text: str) -> tuple[float | None, float | None]:
    low, sep, high = text.partition("-")
    try:
        values = (
            (float(low), float(low))
            if not sep
            else ((float(low) if low else None), (float(high) if high else None))
        )
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad range {text!r}: use MIN-MAX, MIN- or -MAX") from None
    if any(v is not None and not (math.isfinite(v) and v >= 0) for v in values):
        raise argparse.ArgumentTypeError(f"bad range {text!r}: bounds must be numbers >= 0")
    return values


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--duration", type=parse_range, metavar="MIN-MAX", help="track length in seconds, e.g. 60-240"
    )
    group.add_argument("--genre", help="file-tag genre contains this text (case-insensitive)")
    group.add_argument(
        "--bpm", type=parse_range, metavar="MIN-MAX",
        help="BPM range, e.g. 90-120: the file's BPM tag, else the measured tempo (or half/double it)",
    )  # fmt: skip
    voice = group.add_mutually_exclusive_group()
    voice.add_argument(
        "--vocals",
        dest="vocals",
        action="store_const",
        const=True,
        help="only tracks with vocals (a quarter of their segments sung, by the taggers)",
    )
    voice.add_argument(
        "--instrumental", dest="vocals", action="store_const", const=False, help="only instrumental tracks"
    )
    group.add_argument("--folder", help="only tracks under this folder")
    group.add_argument(
        "--exclude", action="append", default=[], metavar="TRACK", help="leave out this track (repeatable)"
    )
    group.add_argument(
        "--exclude-used", action="store_true", help="leave out tracks marked used (see --mark-used)"
    )


def filters_from(args: argparse.Namespace) -> Filters:
    from viml.search import Filters

    duration = args.duration or (None, None)
    bpm = args.bpm or (None, None)
    return Filters(
        min_duration=duration[0], max_duration=duration[1], genre=args.genre, min_bpm=bpm[0], max_bpm=bpm[1],
        folder=args.folder, exclude=set(args.exclude), exclude_used=args.exclude_used, vocals=args.vocals,
    )  # fmt: skip


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--top", type=positive_count, default=10, help="how many tracks (default 10)")
    parser.add_argument(
        "--format",
        choices=["table", "json", "csv", "otio"],
        default="table",
        help="output format (default table)",
    )
    parser.add_argument(
        "-o", "--output", type=output_file, metavar="PATH", help="write to this file instead of the terminal"
    )
    parser.add_argument(
        "--alternatives",
        choices=["none", "muted"],
        default="none",
        help="--format otio: leave the other suggestions out (default), or add them as muted tracks A2..",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest",
        help="rank your music for a video clip and/or a text prompt, with the best part of each track",
        description=(
            "Rank catalogued tracks for a clip (VIDEO with --in/--out) and/or a --prompt. Each result has "
            "its best start offset for a piece of music as long as the clip, the score, matched tags and "
            "a match curve. --format otio writes a timeline with the clip and the music, in the format of the "
            "--output file's extension: .otio .xml (FCP7: Premiere, Resolve) .fcpxml (Final Cut, Resolve) "
            ".kdenlive .xges (Pitivi) .aaf (Avid) .edl."
        ),
    )
    parser.add_argument("video", nargs="?", help="video file (omit for a prompt-only search)")
    parser.add_argument(
        "--in", dest="start", type=parse_time, default=0.0, metavar="T", help="clip in point (default 0)"
    )
    parser.add_argument(
        "--out", dest="end", type=parse_time, metavar="T", help="clip out point (default: 30 s after in)"
    )
    parser.add_argument("--prompt", help="what the music should be like, in words")
    parser.add_argument(
        "--like", metavar="TRACK[@OFFSET]",
        help="start from this track (a path, a catalogued title, or any audio file; @OFFSET in seconds or "
        "m:ss: its part from there) and let --prompt move it: calmer, slower, brighter, without drums ...",
    )  # fmt: skip
    parser.add_argument(
        "--influence", type=fraction, default=0.5, metavar="W",
        help="how much the prompt counts against the picture, 0..1 (default 0.5): 0 ignores the prompt, "
        "1 ranks exactly as the prompt alone (the clip then only sets the parts' length)",
    )  # fmt: skip
    signals = parser.add_argument_group(
        "signals", "how a prompt's ranking mixes the sound with the library's own words (0 turns one off)"
    )
    signals.add_argument(
        "--sound-weight",
        type=non_negative,
        default=1.0,
        metavar="W",
        help="the music itself: the bundle's sound side and prompt terms (default 1)",
    )
    signals.add_argument(
        "--words-weight",
        type=non_negative,
        default=WORDS_WEIGHT,
        metavar="W",
        help=f"file tags, titles, folder and file names matched word for word (default {WORDS_WEIGHT:g})",
    )
    signals.add_argument(
        "--meaning-weight",
        type=non_negative,
        default=MEANING_WEIGHT,
        metavar="W",
        help=f"the prompt's meaning against those words (default {MEANING_WEIGHT:g})",
    )
    signals.add_argument("--pooling", choices=POOLINGS, default="best",
                         help="a track's sound score from its windows (default best)")  # fmt: skip
    add_catalog_arguments(parser)
    add_filter_arguments(parser)
    add_output_arguments(parser)
    parser.add_argument(
        "--mark-used", nargs="?", const=1, type=positive_count, metavar="N",
        help="remember result N (default 1, the top one) as used in this edit: with VIDEO a mark with the "
        "clip and the music's offset (a training pair for `viml learn --from-marks`), else the track only",
    )  # fmt: skip
    parser.add_argument(
        "--project", metavar="NAME",
        help="--mark-used: the edit the clip belongs to, which learning holds out as one (default: the video)",
    )  # fmt: skip
    parser.add_argument(
        "--fit",
        type=Path,
        metavar="FOLDER",
        help="also render each result fitted to the clip's length (viml fit) as a WAV in FOLDER",
    )
    parser.add_argument(
        "--fit-length", type=parse_time, metavar="D", help="length of the fitted edits (default: the clip's)"
    )
    parser.set_defaults(func=run)


def request_from(args: argparse.Namespace) -> SuggestRequest:
    from viml.search import SuggestRequest

    return SuggestRequest(
        video=args.video, start=args.start, end=args.end, prompt=args.prompt, influence=args.influence,
        filters=filters_from(args), top=args.top, sound_weight=args.sound_weight,
        words_weight=args.words_weight, meaning_weight=args.meaning_weight, pooling=args.pooling,
        like=args.like,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher
    from viml.search.prompt_terms import parse_prompt

    request = request_from(args)  # every value checked before anything is opened
    parse_prompt(request.prompt)  # a bad ^weight too
    fit_length = args.fit_length or request.clip_seconds
    if args.fit and not fit_length:
        raise UserFacingError("--fit needs a length: a clip (VIDEO --in/--out) or --fit-length D")
    if args.mark_used and args.mark_used > request.top:
        raise UserFacingError(f"--mark-used {args.mark_used}: there are only {request.top} results (-n)")
    if args.project is not None and not args.mark_used:
        raise UserFacingError("--project names the edit of a --mark-used mark: add --mark-used")
    bundle = open_bundle(args.bundle)
    with Catalog(args.catalog, must_exist=True) as catalog:
        result = Searcher(catalog, bundle).suggest(request, progress=sys.stderr.isatty())
        if args.fit:
            fit_results(result.suggestions, args.fit, fit_length, catalog)
        emit(
            result.suggestions,
            args,
            request.clip_seconds,
            video=args.video,
            video_in=args.start,
            header=result.header,
        )
        if args.mark_used:  # after the results are out: a refused mark loses none of them
            mark_used(catalog, result.suggestions, args, request)
    return 0


def mark_used(catalog, results, args: argparse.Namespace, request: SuggestRequest) -> None:
    """Result N as a used mark: with the clip when there is a video (its out point within the video
    when --out was left to its default), else the track only."""
    if args.mark_used > len(results):
        raise UserFacingError(
            f"--mark-used {args.mark_used}: only {len(results)} tracks matched; nothing marked"
        )
    chosen = results[args.mark_used - 1]
    if request.video is None:
        catalog.add_mark(chosen.path, project=args.project, origin="cli")
        print(f"marked #{args.mark_used} {chosen.path} used (no clip: the track only)", file=sys.stderr)
        return
    from viml.engine.media import probe

    end = request.clip_end if args.end is not None else min(request.clip_end, probe(request.video).duration)
    mark = catalog.add_mark(
        chosen.path, video=request.video, video_in=request.start, video_out=end, music_offset=chosen.start,
        project=args.project, origin="cli",
    )  # fmt: skip
    print(
        f"marked #{args.mark_used} {chosen.path} from {_clock(chosen.start)} used with {request.video} "
        f"{_clock(request.start)}-{_clock(end)} (project {mark.project})",
        file=sys.stderr,
    )


def fit_results(results, folder: Path, length: float, catalog) -> None:
    """Each result's fitted edit (catalog/fitting.py) as FOLDER/<rank>-<title>-<start>+<length>.wav."""
    from viml.catalog.fitting import FIT_LUFS, file_clock, file_title, render_excerpt

    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        title = file_title(result.title, result.path)
        name = f"{result.rank:02d}-{title}-{file_clock(result.start)}+{file_clock(length)}.wav"
        plan = render_excerpt(result.path, result.start, length, folder / name, catalog, target_lufs=FIT_LUFS)
        result.fitted = str(folder / name)
        print(f"fitted #{result.rank}: {plan.describe()} -> {result.fitted}", file=sys.stderr)


def emit(
    results,
    args: argparse.Namespace,
    clip_seconds: float | None,
    video: str | None = None,
    video_in: float = 0.0,
    header: str | None = None,
) -> None:
    from viml.catalog.export import SUGGESTION_FIELDS, to_csv

    rows = [r.as_dict() for r in results]
    if args.format == "otio":
        write_suggestion_timeline(results, args, clip_seconds, video, video_in)
        return
    if args.format == "json":
        text = json.dumps(rows, indent=2, ensure_ascii=False)
    elif args.format == "csv":
        text = to_csv(rows, SUGGESTION_FIELDS)
    else:
        text = (header + "\n" if header else "") + table(results)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + ("" if text.endswith("\n") else "\n"))
    else:
        print(text)


def write_suggestion_timeline(results, args, clip_seconds, video, video_in) -> None:
    from viml.catalog.otio_export import MusicPlacement, build_timeline, write_timeline
    from viml.catalog.timeline_formats import FORMATS, format_for

    if not args.output:
        raise UserFacingError(f"--format otio needs --output PATH with one of {' '.join(FORMATS)}")
    fmt = format_for(args.output)  # an unknown extension stops before anything is built
    if not results:
        raise UserFacingError("no tracks match: there is no music to place on a timeline")
    length = clip_seconds or (results[0].end - results[0].start)
    placements = [MusicPlacement(r.path, r.start, r.title, r.duration, r.downbeats) for r in results]
    timeline = build_timeline(placements, length, video, video_in, alternatives=args.alternatives)
    write_timeline(timeline, args.output)
    music = len([t for t in timeline.tracks if t.kind == "Audio"])
    muted = f" ({music - 1} muted)" if music > 1 else ""
    print(f"wrote {args.output} ({fmt.label}): {music} music track{'s' if music > 1 else ''}{muted}"
          + (f" against {video}" if video else ""))  # fmt: skip


def table(results) -> str:
    if not results:
        return "no tracks match"
    lines = [f"{'#':>2}  {'score':>6}  {'best part':>13}  {'track':<40}  why: tags; words (field)"]
    for r in results:
        name = r.title or r.path.rsplit("/", 1)[-1]
        if r.artist:
            name = f"{r.artist} – {name}"
        why = ", ".join(t["tag"] for t in r.matched_tags)
        if r.matched_words:
            why += "; " + ", ".join(f"{w['word']} ({w['field']})" for w in r.matched_words[:4])
        lines.append(
            f"{r.rank:>2}  {r.score:6.3f}  {_clock(r.start):>6}-{_clock(r.end):<6}  {name[:40]:<40}  {why}"
        )
        rhythm = []
        if r.start_bar is not None:
            rhythm.append(f"bar {r.start_bar}" + (" (section start)" if r.section_start else ""))
        if r.measured_tempo:
            rhythm.append(f"{r.measured_tempo:.0f} BPM measured")
        if r.fitted:
            rhythm.append(f"fitted: {r.fitted}")
        lines.append(f"{'':>26}curve {sparkline(r.curve)}" + ("  " + ", ".join(rhythm) if rhythm else ""))
    return "\n".join(lines)


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    bars = "▁▂▃▄▅▆▇█"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(bars[int((v - low) / span * (len(bars) - 1))] for v in values[:60])


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"
