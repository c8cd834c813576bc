"""`viml learn TIMELINE_OR_FOLDER... [--from-marks]`: train a bundle on your own past edits."""

from __future__ import annotations

import argparse
import json

from viml.cli._args import fraction, positive, positive_count, seed, whole
from viml.cli.scan import add_catalog_arguments

ORDER = 35
SKIPS_SHOWN = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "learn",
        help="train a model bundle on your own past edits (timelines, used marks)",
        description=(
            "Harvest (video span, music, offset) pairs from past timelines (.otio .xml .fcpxml .kdenlive "
            ".xges .aaf .edl, or folders of them) and/or the catalog's used marks, compute their features "
            "with the bundle's own encoders and the catalog's stored music segments, fine-tune the bundle's "
            "ViML towers (a fresh small model for a zero-shot bundle), hold out whole projects, and export "
            "a trained bundle. Held-out Recall@1/5/10 and median rank are reported for the new bundle and "
            "the one it started from; the new bundle becomes the default only when it does no worse. "
            "Rerunning with the same inputs resumes. CPU by default; CUDA when torch sees one."
        ),
    )
    parser.add_argument("timelines", nargs="*", metavar="TIMELINE_OR_FOLDER", help="past edits to learn from")
    parser.add_argument(
        "--from-marks", action="store_true", help="also learn from the catalog's used marks (--mark-used)"
    )
    add_catalog_arguments(parser)
    parser.add_argument(
        "--search-path", action="append", default=[], metavar="DIR",
        help="where to look for media that moved (repeatable; after the timeline's folder and the catalog)",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=positive_count, default=40, help="passes over the pairs (default 40)"
    )
    parser.add_argument("--batch-size", type=whole(2), default=32, help="pairs per step (default 32)")
    parser.add_argument(
        "--lr", type=positive, help="peak learning rate (default 1e-4 fine-tuning, 5e-4 for fresh towers)"
    )
    parser.add_argument(
        "--holdout", type=fraction, default=0.2, help="share of the pairs held out, by project (default 0.2)"
    )
    parser.add_argument(
        "--validation", type=fraction, default=0.2,
        help="share of the training pairs (whole projects) that pick the best epoch; 0 keeps the last "
        "(default 0.2; needs 3 or more training projects)",
    )  # fmt: skip
    parser.add_argument(
        "--holdout-project", action="append", metavar="PROJECT",
        help="hold out this project (a timeline path as harvested; repeatable) instead of drawing them",
    )  # fmt: skip
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="train new towers on the bundle's encoders instead of fine-tuning",
    )
    parser.add_argument(
        "--model", default="viml-small", metavar="NAME",
        help="size of fresh towers: a config in training/model_configs (default viml-small)",
    )  # fmt: skip
    parser.add_argument("--out", metavar="NAME", help="name of the new bundle (default learned-<run>)")
    parser.add_argument("--force", action="store_true", help="replace a bundle of that name")
    parser.add_argument("--no-default", action="store_true", help="never make the new bundle the default")
    parser.add_argument(
        "--no-llm", action="store_true", help="no prompt2text texts even when a language model is configured"
    )
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--progress", action="store_true",
        help="progress bars on stderr even with --json (what the desktop app shows)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.catalog.store import Catalog
    from viml.core.errors import UserFacingError
    from viml.engine.runtime import open_bundle
    from viml.learning.finetune import FineTuneConfig
    from viml.learning.learn import LearnOptions, TooFewPairsError, learn

    if not args.timelines and not args.from_marks:
        raise UserFacingError("give past timelines (files or folders) to learn from, or --from-marks")
    bundle = open_bundle(args.bundle)
    with Catalog(args.catalog, must_exist=True) as catalog:
        pairs, skipped, extra = _harvest(args, catalog)
        if not args.json:
            _print_harvest(pairs, skipped, extra)
        config = FineTuneConfig(
            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
            **({"learning_rate": args.lr, "fresh_learning_rate": args.lr} if args.lr else {}),
        )  # fmt: skip
        options = LearnOptions(
            holdout=args.holdout,
            validation=args.validation,
            holdout_projects=tuple(args.holdout_project) if args.holdout_project else None,
            fine_tune=config,
            fresh=args.fresh,
            fresh_model=args.model,
            out=args.out,
            force=args.force,
            make_default=not args.no_default,
            use_llm=not args.no_llm,
        )
        try:
            report = learn(pairs, skipped, bundle, catalog, options, progress=args.progress or not args.json)
        except TooFewPairsError as error:  # say why each pair could not be used, then the error
            if args.json:
                print(json.dumps({"error": str(error), "pairs found": len(pairs),
                                  "skipped": [s.as_dict() for s in error.skipped], **extra}, ensure_ascii=False))  # fmt: skip
            else:
                _print_skips(error.skipped)
            raise
    if args.json:
        print(json.dumps({**report.as_dict(), **extra}, ensure_ascii=False))
    else:
        _print_report(report, len(skipped))
    return 0


def _harvest(args: argparse.Namespace, catalog) -> tuple[list, list, dict]:
    from viml.learning.harvest import harvest

    pairs, skipped, extra = [], [], {}
    if args.timelines:
        found = harvest(args.timelines, catalog, args.search_path)
        pairs += found.pairs
        skipped += found.skipped
        extra = {"timelines": found.timelines, "relinked": [r.as_dict() for r in found.relinks]}
    if args.from_marks:
        from viml.learning.marks import pairs_from_marks

        marked, not_pairs = pairs_from_marks(catalog)
        pairs += marked
        skipped += not_pairs
        extra["used marks"] = len(marked)
    return pairs, skipped, extra


def _print_harvest(pairs: list, skipped: list, extra: dict) -> None:
    sources = []
    if "timelines" in extra:
        sources.append(f"{len(extra['timelines'])} timeline(s)")
    if "used marks" in extra:
        sources.append(f"{extra['used marks']} used mark(s)")
    relinked = len(extra.get("relinked", []))
    print(
        f"found {len(pairs)} pair(s) in {' and '.join(sources)}"
        + (f", {relinked} file(s) relinked" if relinked else "")
        + (f"; {len(skipped)} skipped" if skipped else "")
    )


def _print_skips(skipped: list) -> None:
    for skip in skipped[:SKIPS_SHOWN]:
        print(f"  skipped {skip.what} ({skip.project}): {skip.why}")
    if len(skipped) > SKIPS_SHOWN:
        print(f"  … and {len(skipped) - SKIPS_SHOWN} more (--json lists all)")


def _print_report(report, harvest_skips: int) -> None:
    from viml.learning.evaluate import POOL_WORDS

    later = report.skipped[harvest_skips:]
    _print_skips(report.skipped)
    if later:
        print(f"{len(later)} pair(s) had no usable features (above)")
    print(
        f"trained on {report.train_pairs} pairs from {report.train_projects} project(s), {report.start}; "
        f"held out {report.heldout_pairs} pairs from {len(report.heldout_projects)} project(s)"
        + (f"; {report.validation_pairs} pairs from {report.validation_projects} project(s) chose the epoch"
           if report.validation_pairs else "")
    )  # fmt: skip
    print(f"bundle {report.bundle.name!r} written to {report.bundle}")
    for note in report.notes:
        print(note)
    if report.new is not None and report.old is not None:
        print(f"held-out edits, each clip's music ranked among {POOL_WORDS} ({report.new.pool_size}):")
        print(f"  {'bundle':<28} {'median rank':>11} {'R@1':>6} {'R@5':>6} {'R@10':>6}")
        for name, result in ((report.bundle.name, report.new), (f"{report.base} (start)", report.old)):
            print(
                f"  {name:<28} {result.median_rank:>11g} {result.recall[1]:>6.1f} {result.recall[5]:>6.1f} "
                f"{result.recall[10]:>6.1f}"
            )
    print(report.default_why)
