"""`viml scan FOLDER`: catalogue a music folder (incremental, resumable, parallel; --watch to follow it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from viml.cli._args import positive, positive_count
from viml.core.errors import UserFacingError

if TYPE_CHECKING:
    from viml.catalog.scan import ScanSummary
    from viml.catalog.store import Catalog

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
    parser.add_argument("-j", "--jobs", type=positive_count, help="worker processes (default: all CPU cores)")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="analyse on a Ray cluster (ADDRESS as `ray start` printed it, or 'auto'; none: start one on "
        "this machine); the music folder must be at the same path on every node; needs viml[cluster]",
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep rescanning for new, changed, removed files"
    )
    parser.add_argument(
        "--interval", type=positive, default=10.0, help="seconds between rescans with --watch (default 10)"
    )
    parser.add_argument(
        "--reanalyze",
        action="store_true",
        help="analyse every file again, changed or not (files analysed under another analysis spec than "
        "the bundle's are always re-analysed)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="try again the files that failed before and the rhythms/waveforms that could not be measured "
        "(by default they wait until the file changes, e.g. after installing a codec)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--events", action="store_true",
        help="print progress as JSON lines, one per committed file, then the summary (schema: docs)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--analyzer",
        default=None,
        help=argparse.SUPPRESS,  # module:callable of another analyzer (tests and benchmarks)
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.cli import DISK_FULL, describe_os_error

    try:
        return _run(args)
    except OSError as error:  # e.g. the disk filled up: every file is committed on its own, so say so
        then = "free space and scan again" if error.errno in DISK_FULL else "scan again"
        raise UserFacingError(
            f"{describe_os_error(error)}; the catalog is unchanged since the last committed file; "
            f"{then} to resume"
        ) from error


def _run(args: argparse.Namespace) -> int:
    from viml.catalog import analysis
    from viml.catalog.scan import scan, watch
    from viml.catalog.store import Catalog

    spec = args.analyzer or analysis.DEFAULT_ANALYZER
    progress = not args.quiet and sys.stderr.isatty()
    bundle = scan_bundle(args.bundle)
    with Catalog(args.catalog, read_only=False) as catalog:

        def report(summary: ScanSummary) -> None:
            result = summary.as_dict()
            result["retrieval"] = embed_for_bundle(catalog, bundle, progress)
            if args.events:
                emit_event({"event": "summary", **result})
            else:
                print_summary(result, as_json=args.json)

        on_event = emit_event if args.events else None
        if args.watch:
            watch(catalog, args.folder, spec, args.jobs, args.interval, report, progress=progress, bundle=bundle,
                  on_event=on_event, ray=args.ray, retry_failed=args.retry_failed)  # fmt: skip
            return 0
        summary = scan(catalog, args.folder, spec, args.jobs, progress=progress, reanalyze=args.reanalyze,
                       bundle=bundle, on_event=on_event, ray=args.ray, retry_failed=args.retry_failed)  # fmt: skip
        report(summary)
    return 0


def emit_event(event: dict) -> None:
    """One event of catalog/scan.py's EVENTS schema as a JSON line (flushed: a reader follows it live)."""
    print(json.dumps(event, ensure_ascii=False), flush=True)


def scan_bundle(bundle: str | None) -> Path | None:
    """The bundle a scan follows: the one asked for, else the default one; None when none is installed
    (the scan then analyses with the converted musicnn and the default segment rules)."""
    from viml.engine.bundles.store import default_bundle_name, list_bundles, resolve_bundle

    if bundle is None and default_bundle_name() is None and not any(i.manifest for i in list_bundles()):
        return None
    return resolve_bundle(bundle)


def embed_for_bundle(catalog: Catalog, bundle: Path | None, progress: bool) -> dict:
    """Put every catalogued track into the bundle's retrieval space, from the stored music-model outputs.

    A track already embedded in that space costs nothing; after a bundle change the new space is filled
    without decoding audio. With no bundle installed at all the scan still stands (`viml suggest` embeds
    once one is).
    """
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher

    if bundle is None:
        return {
            "bundle": None,
            "space": None,
            "embedded": 0,
            "note": "no model bundle installed: tracks are embedded for search once one is "
            "(`viml bundle build --zero-shot --default`)",
        }
    from viml.search.candidates import prepare_index

    searcher = Searcher(catalog, open_bundle(bundle))
    embedded = searcher.prepare(progress=progress)
    index = prepare_index(catalog, searcher.space.id)  # big libraries: the segment index (search/ann.py)
    return {"bundle": searcher.bundle.name, "space": searcher.space.id, "embedded": embedded, **index}


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
    if summary.get("reanalysed"):
        print(f"  re-analysed {summary['reanalysed']}: analysed under another analysis spec than "
              f"{summary.get('analysis')} (or --reanalyze)")  # fmt: skip
    measured = [(summary.get(f"{what}_measured", 0), summary.get(f"{what}_failed", 0), what)
                for what in ("rhythm", "waveforms")]  # fmt: skip
    if any(done or failed for done, failed, _ in measured):  # catalogued before these were measured
        print("  measured without the music model: " + ", ".join(
            f"{done} {what}" + (f" ({failed} failed)" if failed else "")
            for done, failed, what in measured if done or failed))  # fmt: skip
    for failure in summary.get("measure_failures", [])[:limit]:
        print(f"    {' and '.join(failure['what'])} not measured: {failure['path']}: {failure['message']}")
    if summary["still_failing"]:
        print(f"  skipped {summary['still_failing']}: failed before and unchanged since (--retry-failed)")
    if summary.get("measures_still_failing"):
        print(f"  not measured {summary['measures_still_failing']}: their rhythm or waveform failed before "
              "and the file is unchanged since (--retry-failed)")  # fmt: skip
    for kind, count in summary["failed"].items():
        print(f"  failed {count}: {kind}")
    for failure in summary["failures"][:limit]:
        print(f"    {failure['kind']}: {failure['path']}: {failure['message']}")
    if len(summary["failures"]) > limit:
        print(f"    … and {len(summary['failures']) - limit} more (--json lists all)")
