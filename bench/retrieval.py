"""The paper's results table on the demo world, in one command.

    python bench/retrieval.py [--pieces 600] [--steps 1500] [--seeds 0] [--json results.json]

Rows: chance; video only; ViML trained with tags text queried without text and with tags; text dropout
on (0.8) vs off; and ViML trained on data2text and on prompt2text text, queried with held-out
descriptions whose wording no training template uses. The prompt2text texts come from a *stand-in*
language model served over the real OpenAI-compatible HTTP protocol (demo/standin.py), not from
a real LLM: this machine has none. Each trained row is the mean over the training seeds given.

The frame encoder is the demo's small RANDOMLY INITIALISED vision tower (no CLIP weights offline); the
music model (musicnn) and the text encoder (all-MiniLM-L6-v2) are real pretrained models.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from viml.training.features import FeatureSet
    from viml.training.metrics import RetrievalResult


@dataclass(frozen=True)
class Variant:
    name: str
    train_text: list[str]
    text_dropout: float
    queries: tuple[str | None, ...]


VARIANTS = (
    Variant("video only", [], 0.8, (None,)),
    Variant("ViML", ["tags"], 0.8, (None, "tags", "heldout")),
    Variant("ViML, text dropout off", ["tags"], 0.0, (None, "tags")),
    Variant("ViML", ["data2text"], 0.8, (None, "heldout")),
    Variant("ViML", ["prompt2text"], 0.8, (None, "heldout")),
)


def add_prompt2text(features: FeatureSet, seed: int) -> str:
    """Synthesise prompt2text texts through the real client talking HTTP to the stand-in server."""
    from viml.demo.standin import StandInLMServer
    from viml.engine.text.llm import ChatClient, LLMConfig
    from viml.engine.text.synthesis import synthesize_collection
    from viml.training.encoders.text import MiniLMTextEncoder

    if "prompt2text" in features.text_methods:
        return "cached"
    tags = {item.id: item.tags for item in features.items if item.split == "train"}
    with StandInLMServer() as server, tempfile.TemporaryDirectory() as cache:
        client = ChatClient(LLMConfig(server.url, server.model, backoff_s=0.05), cache_path=Path(cache))
        texts, failed = synthesize_collection(tags, "prompt2text", per_item=4, seed=seed, client=client)
        client.close()
    encoder = MiniLMTextEncoder()
    embeddings = {item_id: encoder.encode_texts(item_texts) for item_id, item_texts in texts.items()}
    features.with_texts("prompt2text", texts, embeddings)
    return f"{sum(map(len, texts.values()))} texts for {len(texts)} items, {len(failed)} rejected"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pieces", type=int, default=600, help="music videos in the world (default 600)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (rows are means)")
    parser.add_argument("--world-seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=2000, help="pool size N (all test clips when fewer)")
    parser.add_argument("--folder", type=Path, help="cache folder (default VIML_HOME/bench)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    from viml.core.paths import viml_home
    from viml.demo.run import DemoConfig, ensure_features, ensure_world
    from viml.training.metrics import chance
    from viml.training.pipeline import Row, format_table, train_and_evaluate
    from viml.training.train import TrainConfig

    seeds = [int(s) for s in args.seeds.split(",")]
    root = args.folder or viml_home() / "bench"
    config = DemoConfig(pieces=args.pieces, seconds=(20.0, 40.0), seed=args.world_seed)
    started = time.perf_counter()
    world = ensure_world(root / f"world-{config.name}", config)
    features = ensure_features(root / f"features-{config.name}", world, config)
    prompt2text_note = add_prompt2text(features, args.world_seed)
    features.save(root / f"features-{config.name}")  # keep the prompt2text texts for the next run
    prepared = time.perf_counter() - started

    test_count = len(features.split("test"))
    chance_result = chance(min(args.pool, test_count))
    rows = [Row("chance", "-", "-", "-", chance_result)]
    for variant in VARIANTS:
        per_query: dict[str | None, list[RetrievalResult]] = {}
        for seed in seeds:
            run = (
                root
                / f"run-{config.name}-{'+'.join(variant.train_text) or 'none'}-p{variant.text_dropout}-s{seed}-{args.steps}"
            )
            train_config = TrainConfig(steps=args.steps, text_methods=variant.train_text, seed=seed)
            results = train_and_evaluate(
                features,
                run,
                train_config,
                {"text_dropout": variant.text_dropout},
                variant.queries,
                args.pool,
                progress=False,
            )
            for method, result in results:
                per_query.setdefault(method, []).append(result)
        for method, results in per_query.items():
            rows.append(
                Row(
                    variant.name,
                    "+".join(variant.train_text) or "-",
                    "-" if not variant.train_text else ("on" if variant.text_dropout else "off"),
                    method or "-",
                    mean_result(results),
                )
            )
    title = (
        f"Demo world: {len(features.items)} music videos, {test_count} test clips, pool N={chance_result.pool_size}; "
        f"world seed {args.world_seed}, training seeds {seeds}, {args.steps} steps"
    )
    print(format_table(rows, title))
    video_only = next(r for r in rows if r.name == "video only").result
    print("\nratios (R@10 over chance; median rank of video only over this row):")
    for row in rows[1:]:
        print(
            f"  {row.name:<24} train={row.train_text:<11} query={row.query_text:<8} "
            f"R@10 x{row.result.recall[10] / chance_result.recall[10]:.1f} vs chance, "
            f"MedR x{video_only.median_rank / row.result.median_rank:.2f} vs video only"
        )
    print(f"\nframe encoder: {features.provenance.get('frame_encoder')}")
    print(f"text encoder:  {features.provenance.get('text_encoder')}")
    print(f"music model:   {features.provenance.get('music_model')}")
    print(f"prompt2text:   stand-in language model over HTTP ({prompt2text_note}), not a real LLM")
    print(
        f"time: {prepared:.0f} s world+features, {time.perf_counter() - started - prepared:.0f} s training+eval"
    )
    if args.json:
        figures = {
            "world pieces": len(features.items),
            "test clips": test_count,
            "pool size": chance_result.pool_size,
            "training seeds": seeds,
            "training steps": args.steps,
            "frame encoder": features.provenance.get("frame_encoder"),
            "rows": [
                {
                    "method": r.name,
                    "train text": r.train_text,
                    "text dropout": r.dropout,
                    "query text": r.query_text,
                    **r.result.row(),
                }
                for r in rows
            ],
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def mean_result(results: Sequence[RetrievalResult]) -> RetrievalResult:
    from viml.training.metrics import RetrievalResult

    first = results[0]
    return RetrievalResult(
        first.pool_size,
        first.queries,
        {k: float(np.mean([r.recall[k] for r in results])) for k in first.recall},
        float(np.mean([r.median_rank for r in results])),
    )


if __name__ == "__main__":
    sys.exit(main())
