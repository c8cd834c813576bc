"""`viml tag PATH...`: tag music files with the converted musicnn taggers; table, CSV, JSON, file tags."""

from __future__ import annotations

import argparse
from pathlib import Path

from viml.cli._args import fraction, output_path, positive_count
from viml.cli.scan import add_catalog_arguments
from viml.engine.tags import TAG_THRESHOLD

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="tag music files or folders (genre, mood, instruments) with the pretrained music model",
        description=(
            "Tag audio files (folders are searched recursively) with musicnn's MTT and MSD taggers, per "
            "track and per segment. The files are scanned into the catalog exactly as `viml scan` does "
            "(with the bundle's analysis spec; incremental, parallel, resumable after a kill), and the "
            "results are read back from it. Prints a table; --csv and --json write per-segment tags. "
            "--write-tags shows which genres/moods would be added to the files (Picard conventions: ID3 "
            "TCON/TMOO, Vorbis GENRE/MOOD, MP4 ©gen/MOOD); add --apply to write them (in place, with a "
            "verified backup; existing values are kept)."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    parser.add_argument(
        "--threshold",
        type=fraction,
        default=TAG_THRESHOLD,
        help=f"tag probability cut (default {TAG_THRESHOLD})",
    )
    parser.add_argument(
        "--top", type=positive_count, default=5, help="tags per track in the table (default 5)"
    )
    parser.add_argument("--json", type=output_path, metavar="PATH", help="write all results as JSON")
    parser.add_argument("--csv", type=output_path, metavar="PATH", help="write one row per segment as CSV")
    add_catalog_arguments(parser)
    parser.add_argument("-j", "--jobs", type=positive_count, help="worker processes (default: all CPU cores)")
    parser.add_argument("--reanalyze", action="store_true", help="analyse every file again, changed or not")
    parser.add_argument("--write-tags", action="store_true", help="plan writing genre/mood into the files")
    parser.add_argument("--apply", action="store_true", help="with --write-tags: really write the files")
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto", help="onnxruntime device")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from viml.catalog import analysis
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.catalog.tagging import (
        find_audio_files,
        plan_file_tags,
        results_from_catalog,
        write_csv,
        write_json,
    )
    from viml.cli.scan import scan_bundle
    from viml.core.errors import UserFacingError

    if args.apply and not args.write_tags:
        raise UserFacingError("--apply only makes sense with --write-tags")
    files, missing = find_audio_files(args.paths)
    for path in missing:
        print(f"viml: {path}: no such file or folder", file=sys.stderr)
    if not files:
        raise UserFacingError("no audio files found in the given paths")
    if args.write_tags:  # undo tag writes a kill interrupted, before their files are read again
        from viml.engine.music.filetags import recover

        for line in recover(files):
            print(f"viml: {line}", file=sys.stderr)
    if args.device == "cpu":
        os.environ["VIML_PROVIDER"] = "cpu"  # this process and the scan's workers
    bundle = scan_bundle(args.bundle)
    progress = sys.stderr.isatty()
    with Catalog(args.catalog, read_only=False) as catalog:
        for path in args.paths:
            if path.exists():
                scan(
                    catalog, path, jobs=args.jobs, progress=progress, reanalyze=args.reanalyze, bundle=bundle
                )
        results = results_from_catalog(catalog, files)

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
        write_json(
            args.json, results, analysis.analysis_spec(os.fspath(bundle) if bundle else None), args.threshold
        )
    if args.csv:
        write_csv(args.csv, results, args.threshold)
    return 1 if failures else 0
