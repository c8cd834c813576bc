"""`viml similar TRACK`: catalogued tracks and sections that sound most like a reference ("temp music")."""

from __future__ import annotations

import argparse

from viml.cli.scan import add_catalog_arguments
from viml.cli.suggest import add_filter_arguments, add_output_arguments, emit, filters_from, parse_time

ORDER = 31


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similar",
        help="find tracks (and sections) that sound like a reference track",
        description=(
            "Rank catalogued tracks by how much they sound like TRACK (which must be catalogued), in the "
            "music model's embedding space. With --start/--end, that part of TRACK is matched as a "
            "sequence and each result gives its best matching part; also lists the closest single segments."
        ),
    )
    parser.add_argument("track", help="reference track (already scanned)")
    parser.add_argument("--start", type=parse_time, help="use the reference from this time")
    parser.add_argument("--end", type=parse_time, help="use the reference up to this time")
    add_catalog_arguments(parser)
    add_filter_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from viml.catalog.store import Catalog
    from viml.search import Searcher

    with Catalog(args.catalog, must_exist=True) as catalog:
        tracks, segments = Searcher(catalog).similar(
            args.track, args.start, args.end, filters_from(args), args.top
        )
    if args.format == "json" and not args.output:
        print(
            json.dumps(
                {"tracks": [t.as_dict() for t in tracks], "segments": [vars(s) for s in segments]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    emit(tracks, args, None)
    if args.format == "table" and not args.output and segments:
        print("\nclosest single segments:")
        for hit in segments:
            print(f"  {hit.score:6.3f}  {int(hit.start // 60)}:{hit.start % 60:04.1f}  {hit.path}")
    return 0
