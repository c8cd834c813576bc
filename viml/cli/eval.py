"""`viml eval`: the paper's protocol — rank the true track in a pool of N; Recall@1/5/10, median rank."""

from __future__ import annotations

import json
from pathlib import Path

from viml.cli._args import output_file, positive_count, whole

ORDER = 40


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a trained model: Recall@1/5/10 and median rank in a pool of N",
        description=(
            "Rank each held-out clip's true music among a pool of N (track level N=2000, clip level N=500, "
            "or all items when fewer), without text and with each requested query text, next to chance "
            "computed by the same code."
        ),
    )
    parser.add_argument("model", type=Path, help="model.safetensors or the run folder holding it")
    parser.add_argument("features", type=Path, help="feature cache folder")
    parser.add_argument(
        "--level", choices=["track", "clip"], default="track",
        help="the paper's pool: track level N=2000 (default) or clip level N=500",
    )  # fmt: skip
    parser.add_argument("--pool", type=whole(2), help="pool size N (default: the level's)")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--query-text",
        default="none,tags",
        help="comma-separated query texts: none, tags, data2text, heldout",
    )
    parser.add_argument("--window", type=positive_count, default=3, help="segments per query clip")
    parser.add_argument("--json", type=output_file, help="also write the results here")
    parser.set_defaults(func=run)


def run(args) -> int:
    from viml.training.evaluate import CLIP_LEVEL_POOL, TRACK_LEVEL_POOL, EvalConfig, evaluate
    from viml.training.features import FeatureSet
    from viml.training.metrics import chance
    from viml.training.model import load_checkpoint
    from viml.training.pipeline import Row, format_table

    pool = args.pool or (CLIP_LEVEL_POOL if args.level == "clip" else TRACK_LEVEL_POOL)
    path = args.model / "model.safetensors" if args.model.is_dir() else args.model
    model, metadata = load_checkpoint(path)
    features = FeatureSet.load(args.features)
    items = features.split(args.split)
    rows = []
    for name in [m.strip() for m in args.query_text.split(",") if m.strip()]:
        method = None if name == "none" else name
        result = evaluate(
            model, items, EvalConfig(pool_size=pool, window_segments=args.window, text_method=method)
        )
        rows.append(Row("ViML", "", "", name, result))
    rows.insert(0, Row("chance", "", "", "", chance(rows[0].result.pool_size)))
    print(format_table(rows, f"{len(items)} {args.split} clips, pool N={rows[0].result.pool_size}"))
    print(f"frame encoder: {metadata.get('frame_encoder', 'unknown')}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [{"method": r.name, "query text": r.query_text, **r.result.row()} for r in rows], indent=2
            )
        )
    return 0
