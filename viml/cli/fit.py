"""`viml fit TRACK --start T --duration D -o out.wav`: adapt a track to a clip's length, musically."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from viml.cli._args import output_file
from viml.cli.suggest import parse_time

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="adapt a track to a length: start on a downbeat, end exactly at the out point",
        description=(
            "Render TRACK from START for exactly DURATION: the start moves to the nearest downbeat (or a "
            "section start within a bar or two); the edit ends on the track's own ending, removes or "
            "repeats whole bars at beat-matched crossfades, or fades out from a phrase boundary, "
            "whichever costs least (docs/sections/fit.md). Writes WAV or FLAC at the track's own sample "
            "rate and channels, and optionally the edit as a timeline (.otio, .edl)."
        ),
    )
    parser.add_argument("track", type=Path, help="music file")
    parser.add_argument(
        "--start", type=parse_time, default=0.0, metavar="T", help="seconds or m:ss (default 0)"
    )
    parser.add_argument(
        "--duration", type=parse_time, required=True, metavar="D", help="target length, seconds or m:ss"
    )
    parser.add_argument("-o", "--output", type=output_file, required=True, help="out.wav or out.flac")
    parser.add_argument(
        "--timeline", type=output_file, metavar="FILE", help="also write the edit: .otio or .edl"
    )
    parser.add_argument("--rate", type=float, default=25.0, help="timeline frame rate (default 25)")
    parser.add_argument("--bits", type=int, choices=(16, 24), default=16, help="WAV bit depth (FLAC: 16)")
    parser.add_argument(
        "--strategy",
        choices=("auto", "ending", "fade", "bars"),
        default="auto",
        help="default: auto (cheapest)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--catalog", metavar="PATH", help="read the track's beats from this catalog (default: ViML's own)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.core.errors import MediaError, UserFacingError
    from viml.engine.music import fit

    # Everything that can be refused is refused before any decoding.
    if fit.audio_format(args.output) == ".flac" and args.bits != 16:
        raise UserFacingError(f"{args.output}: FLAC is written at 16 bits; use .wav for {args.bits} bits")
    if args.timeline and Path(args.timeline).suffix.lower() not in fit.TIMELINE_SUFFIXES:
        raise UserFacingError(f"{args.timeline}: timelines are written as .otio or .edl")
    if not args.track.is_file():
        raise MediaError(args.track, "file not found" if not args.track.exists() else "not a file")
    if args.duration <= 0:
        raise UserFacingError(f"the duration must be more than 0 s, got {args.duration:g}")
    if not 1 <= args.rate <= 240:
        raise UserFacingError(
            f"the timeline rate must be between 1 and 240 frames per second, got {args.rate:g}"
        )
    audio, sample_rate = fit.read_source_audio(args.track)
    if args.start >= len(audio) / sample_rate:  # before the (slower) rhythm analysis
        length = fit.clock(len(audio) / sample_rate)
        raise UserFacingError(f"start {fit.clock(args.start)} is outside the track (0:00.0 to {length})")
    rhythm = track_rhythm(args.track, args.catalog)
    plan = fit.plan_fit(rhythm, args.start, args.duration, prefer=args.strategy)
    fit.write_audio(args.output, fit.render_fit(audio, sample_rate, plan), sample_rate, bits=args.bits)
    if args.timeline:
        fit.write_fit_timeline(fit.fit_timeline(plan, args.track, rate=args.rate), args.timeline)
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(plan.describe())
        print(f"wrote {args.output}" + (f" and {args.timeline}" if args.timeline else ""))
    return 0


def track_rhythm(path: Path, catalog_path: str | None):
    """The track's rhythm: the catalog's when it holds the file unchanged, else measured now."""
    from viml.catalog.fitting import rhythm_of
    from viml.catalog.store import Catalog, default_catalog_path

    location = Path(catalog_path) if catalog_path else default_catalog_path()
    if not location.exists():
        if catalog_path:
            from viml.core.errors import UserFacingError

            raise UserFacingError(f"no catalog at {location}")
        return rhythm_of(path)
    with Catalog(location, read_only=True) as catalog:
        return rhythm_of(path, catalog)
