"""`viml tag PATH...`: tag music files with the converted musicnn taggers; table, CSV, JSON, file tags."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from viml.engine.segments import MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="tag music files or folders (genre, mood, instruments) with the pretrained music model",
        description=(
            "Tag audio files (folders are searched recursively) with musicnn's MTT and MSD taggers, per "
            "track and per segment. Prints a table; --csv and --json write per-segment tags. Results are "
            "cached per file (path, size, modification time, model), so an interrupted run on a big "
            "folder resumes where it stopped. --write-tags shows which genres/moods would be added to "
            "the files (Picard conventions: ID3 TCON/TMOO, Vorbis GENRE/MOOD, MP4 ©gen/MOOD); add "
            "--apply to write them (safely: temp copy, verify, replace; existing values are kept)."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    parser.add_argument(
        "--threshold", type=_probability, default=0.3, help="tag probability cut (default 0.3)"
    )
    parser.add_argument("--top", type=_count, default=5, help="tags per track in the table (default 5)")
    parser.add_argument(
        "--segment-seconds",
        type=_segment_seconds,
        default=10.0,
        help=f"segment length, {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g} s (default 10)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results as JSON")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write one row per segment as CSV")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not update the result cache")
    parser.add_argument("--write-tags", action="store_true", help="plan writing genre/mood into the files")
    parser.add_argument("--apply", action="store_true", help="with --write-tags: really write the files")
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto", help="onnxruntime device")
    parser.set_defaults(func=run)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _finite(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _segment_seconds(text: str) -> float:
    """Segments shorter than MIN_SEGMENT_SECONDS multiply the work (0.0001 s took 22 GB)."""
    value = _finite(text)
    if not MIN_SEGMENT_SECONDS <= value <= MAX_SEGMENT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_SEGMENT_SECONDS:g} and {MAX_SEGMENT_SECONDS:g} seconds, got {text}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from viml.core.errors import UserFacingError
    from viml.engine.music.runtime import MusicModel
    from viml.engine.music.tagging import (
        ResultCache,
        find_audio_files,
        plan_file_tags,
        tag_file,
        write_csv,
        write_json,
    )

    if args.apply and not args.write_tags:
        raise UserFacingError("--apply only makes sense with --write-tags")
    if not 0.0 <= args.threshold <= 1.0:
        raise UserFacingError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.segment_seconds <= 0:
        raise UserFacingError(f"--segment-seconds must be positive, got {args.segment_seconds}")
    files, missing = find_audio_files(args.paths)
    for path in missing:
        print(f"viml: {path}: no such file or folder", file=sys.stderr)
    if not files:
        raise UserFacingError("no audio files found in the given paths")
    if args.write_tags:  # undo tag writes a kill interrupted, before their files are read again
        from viml.engine.music.filetags import recover

        for line in recover(files):
            print(f"viml: {line}", file=sys.stderr)
    model = MusicModel.load(device=args.device)
    cache = None if args.no_cache else ResultCache.open(model, args.segment_seconds)
    results = []
    for path in tqdm(files, desc="tagging", unit="file", disable=None, file=sys.stderr):
        results.append(tag_file(model, path, args.segment_seconds, cache))
    if cache is not None:
        cache.close()

    for result in results:
        print(result.table_row(args.threshold, args.top))
    failures = [r for r in results if r.status == "error"]
    tagged = len(results) - len(failures)
    print(f"\n{tagged} of {len(results)} files tagged, {len(failures)} failed", file=sys.stderr)

    if args.write_tags:
        for result in results:
            line = plan_file_tags(result, args.threshold, apply=args.apply)
            if line:
                print(line)
    if args.json:
        write_json(args.json, results, model, args.threshold)
    if args.csv:
        write_csv(args.csv, results, args.threshold)
    return 1 if failures else 0
