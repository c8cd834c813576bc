"""`viml tags`: export the catalog's tags (per track or per segment) as CSV or JSON."""

from __future__ import annotations

import argparse

from viml.cli._args import fraction, output_file
from viml.cli.scan import add_catalog_arguments

ORDER = 32


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tags",
        help="export catalogued tags as CSV or JSON",
        description="Export the music model's tags of every catalogued track (or every 10 s segment).",
    )
    add_catalog_arguments(parser)
    parser.add_argument(
        "--segments", action="store_true", help="one row per 10 s segment instead of per track"
    )
    parser.add_argument(
        "--format", choices=["csv", "json"], default="csv", help="output format (default csv)"
    )
    parser.add_argument(
        "--threshold", type=fraction, default=0.3, help="lowest tag probability listed (default 0.3)"
    )
    parser.add_argument(
        "-o", "--output", type=output_file, metavar="PATH", help="write to this file instead of the terminal"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.catalog.export import SEGMENT_FIELDS, TRACK_FIELDS, tag_rows, to_csv, to_json
    from viml.catalog.store import Catalog

    with Catalog(args.catalog, must_exist=True) as catalog:
        rows = tag_rows(catalog, per_segment=args.segments, threshold=args.threshold)
    text = (
        to_json(rows)
        if args.format == "json"
        else to_csv(rows, SEGMENT_FIELDS if args.segments else TRACK_FIELDS)
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0
