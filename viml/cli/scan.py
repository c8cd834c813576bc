"""`viml scan FOLDER`: catalogue a music folder (incremental, resumable, parallel; --watch to follow it)."""

from __future__ import annotations

import argparse
import json
import sys

ORDER = 20


def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """--catalog and --bundle, shared by every catalog command."""
    parser.add_argument(
        "--catalog", metavar="PATH", help="catalog database (default: catalog.sqlite in ViML's data folder)"
    )
    parser.add_argument(
        "--bundle",
        metavar="NAME",
        help="model bundle name or folder (default: the configured default bundle)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="add a music folder to the catalog (incremental and resumable)",
        description=(
            "Analyse every audio file under FOLDER into the catalog: 10 s segments with music-model "
            "embeddings and tags, plus file tags. Unchanged files are skipped at the cost of a stat, moved "
            "files keep their analysis, and an interrupted scan resumes where it stopped."
        ),
    )
    parser.add_argument("folder", help="music folder to scan (recursively)")
    add_catalog_arguments(parser)
    parser.add_argument("-j", "--jobs", type=int, help="worker processes (default: all CPU cores)")
    parser.add_argument(
        "--watch", action="store_true", help="keep rescanning for new, changed, removed files"
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between rescans with --watch (default 10)"
    )
    parser.add_argument(
        "--reanalyze",
        action="store_true",
        help="re-analyse files analysed with another music model, changed or not",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--analyzer",
        default=None,
        help=argparse.SUPPRESS,  # module:callable of another analyzer (tests and benchmarks)
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.catalog import analysis
    from viml.catalog.scan import scan, watch
    from viml.catalog.store import Catalog

    spec = args.analyzer or analysis.DEFAULT_ANALYZER
    progress = not args.quiet and sys.stderr.isatty()
    with Catalog(args.catalog) as catalog:

        def report(summary) -> None:
            result = summary.as_dict()
            result["retrieval"] = embed_for_bundle(catalog, args.bundle, progress)
            print_summary(result, as_json=args.json)

        if args.watch:
            watch(catalog, args.folder, spec, args.jobs, args.interval, report, progress=progress)
            return 0
        summary = scan(catalog, args.folder, spec, args.jobs, progress=progress, reanalyze=args.reanalyze)
        report(summary)
    return 0


def embed_for_bundle(catalog, bundle: str | None, progress: bool) -> dict:  # noqa: ANN001 (Catalog)
    """Put every catalogued track into the bundle's retrieval space, from the stored music-model outputs.

    A track already embedded in that space costs nothing; after a bundle change the new space is filled
    without decoding audio. With no bundle installed at all the scan still stands (`viml suggest` embeds
    once one is); a bundle that was asked for, or a broken default, is an error.
    """
    from viml.catalog.retrieval import ensure_space
    from viml.engine.bundles.store import default_bundle_name, list_bundles
    from viml.engine.runtime import open_retrieval

    if bundle is None and default_bundle_name() is None and not any(i.manifest for i in list_bundles()):
        return {
            "bundle": None,
            "space": None,
            "embedded": 0,
            "note": "no model bundle installed: tracks are embedded for search once one is "
            "(`viml bundle build --zero-shot --default`)",
        }
    runtime, space, _ = open_retrieval(bundle)
    return {"bundle": runtime.name, "space": space.id, "embedded": ensure_space(catalog, space, progress)}


def print_summary(summary: dict, as_json: bool = False, limit: int = 20) -> None:
    if as_json:
        print(json.dumps(summary, ensure_ascii=False), flush=True)
        return
    print(
        f"{summary['root']}: {summary['seen']} audio files in {summary['seconds']:.1f} s — "
        f"{summary['analysed']} analysed ({summary['audio_seconds'] / 60:.1f} min of audio), "
        f"{summary['linked']} linked to existing analysis, {summary['touched']} touched, "
        f"{summary['unchanged']} unchanged, {summary['removed']} removed",
        flush=True,
    )
    retrieval = summary.get("retrieval") or {}
    if retrieval.get("note"):
        print(f"  {retrieval['note']}")
    elif retrieval.get("space"):
        print(
            f"  search space of bundle {retrieval['bundle']!r}: {retrieval['embedded']} tracks embedded "
            f"({retrieval['space']})"
        )
    for reason, count in summary["skipped"].items():
        print(f"  skipped {count}: {reason}")
    if summary["still_failing"]:
        print(f"  skipped {summary['still_failing']}: failed before and unchanged since")
    for kind, count in summary["failed"].items():
        print(f"  failed {count}: {kind}")
    for failure in summary["failures"][:limit]:
        print(f"    {failure['kind']}: {failure['path']}: {failure['message']}")
    if len(summary["failures"]) > limit:
        print(f"    … and {len(summary['failures']) - limit} more (--json lists all)")
