"""Learning from your own edits on the demo world: the learning curve, in one command.

    python bench/learn.py [--pieces 240] [--sizes 25,50,100,200] [--seeds 0,1] [--steps 300] [--json out.json]

1. The demo world, its features and the demo model are `viml demo`'s (shared folders, reused when there);
   the demo bundle and a zero-shot bundle (MiniLM + musicnn, no CLIP) are built into the bench folder, and
   the world's music is scanned into the bench's catalog with the demo bundle's music model.
2. Past edits: `demo/past_edits.py` writes the world's pieces as projects of 3-6 shots (two shots per
   piece), each project from one split, as OTIO, FCP7 XML and Kdenlive. All three are harvested
   (`learning.harvest`); they must give the same pairs.
3. Features of every pair with the demo bundle's own encoders (`learning.features`): its frame encoder on
   the shot, the catalog's stored music segments from the shot's offset, texts from the music's tags.
4. Held out: every test-split project (pieces the demo model never saw). For each size N and seed, N
   training pairs are drawn by whole projects from the train and val splits, and the towers are trained
   for the same number of steps (--steps, batches of 32) either fresh (viml-small on the demo bundle's
   encoders) or fine-tuned from the demo bundle. Each held-out clip's music is ranked among every
   catalogued track (`learning.evaluate`).
5. Rows: the zero-shot bundle with a prompt only (the scene words a user would type for the clip: the
   piece's mood, energy and tempo words, not its instruments or genre), ranked by `viml suggest`'s Searcher;
   the demo bundle on the clip; the curve; and one real `viml learn` run on the OTIO folder (all training
   projects, from the demo bundle, exported and evaluated through the ONNX bundle, in a child process).
   Ratios are against the prompt-only baseline: R@10 ratio (higher is better) and baseline median rank over
   the row's (higher is better).

The frame encoder is the demo's RANDOMLY INITIALISED tiny CLIP (no CLIP weights offline); musicnn and
MiniLM are real pretrained models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from viml.learning.features import LearnSet
    from viml.training.metrics import RetrievalResult

FORMATS = (".otio", ".xml", ".kdenlive")
SPANS_PER_PIECE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pieces", type=int, default=240, help="pieces in the demo world (default 240)")
    parser.add_argument("--sizes", default="25,50,100,200", help="training edits per curve point")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (rows are means)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument(
        "--demo-steps", type=int, default=1200, help="the demo model's training steps (default: viml demo's)"
    )
    parser.add_argument("--folder", type=Path, help="bench folder (default VIML_HOME/bench/learn)")
    parser.add_argument("--no-cli", action="store_true", help="leave out the `viml learn` run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("VIML_RHYTHM", "0")  # the catalog's beats play no part in learning
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from viml.core.paths import viml_home

    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    root = args.folder or viml_home() / "bench" / "learn"
    root.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    setup = prepare(root, args.pieces, args.demo_steps)
    times["prepare (world, demo model, bundles, scan, past edits)"] = time.perf_counter() - started
    # From here on this process and the `viml learn` child share one home: the same clip cache, so the
    # start bundle's figures in both are computed from the same frame embeddings.
    os.environ["VIML_HOME"] = str(root / "home")

    mark = time.perf_counter()
    pairs, formats_agree = harvest_all(setup["edits"], setup["catalog"])
    times["harvest"] = time.perf_counter() - mark
    mark = time.perf_counter()
    learned = features(setup, pairs)
    times["features"] = time.perf_counter() - mark
    heldout_projects = {p.files[".otio"] for p in setup["projects"] if p.split == "test"}
    heldout = [item for item in learned.features.items if learned.pairs[item.id].project in heldout_projects]
    pool = [p for p in setup["projects"] if p.split != "test" and p.files[".otio"] in _projects_of(learned)]

    mark = time.perf_counter()
    rows: dict[str, dict] = {}
    rows["zero-shot, prompt only (scene words)"] = row_of(prompt_baseline(setup, learned, heldout))
    rows["demo bundle, clip only"] = row_of(demo_row(setup, learned, heldout))
    times["baselines"] = time.perf_counter() - mark
    curve: dict[str, dict[int, list[RetrievalResult]]] = {"fresh towers": {}, "fine-tuned from demo": {}}
    mark = time.perf_counter()
    for size in sizes:
        for seed in seeds:
            chosen = draw(pool, learned, size, seed)
            for start, results in curve.items():
                results.setdefault(size, []).append(
                    train_and_rank(setup, learned, chosen, heldout, start, seed, args.steps, root)
                )
    times["learning curve"] = time.perf_counter() - mark
    for start, results in curve.items():
        for size, found in results.items():
            rows[f"learned from {size} edits, {start}"] = mean_row(found)
    cli = None
    if not args.no_cli:
        mark = time.perf_counter()
        cli = run_viml_learn(setup, learned, heldout_projects, args.steps, root)
        times["viml learn (child process)"] = time.perf_counter() - mark
        rows[f"viml learn: {cli['training pairs']} edits, from demo, exported"] = cli[
            "held-out metrics, new bundle"
        ]

    baseline = rows["zero-shot, prompt only (scene words)"]
    report(rows, baseline, learned, heldout, setup, sizes, seeds, args.steps, formats_agree, cli, times)
    if args.json:
        out = {
            "held-out edits": len(heldout),
            "held-out projects": len(heldout_projects),
            "pool": f"every catalogued track ({baseline['pool']})",
            "sizes": sizes,
            "seeds": seeds,
            "steps per run": args.steps,
            "formats give the same pairs": formats_agree,
            "rows": {name: {**row, **ratios(row, baseline)} for name, row in rows.items()},
            "viml learn": cli,
            "seconds": {k: round(v, 1) for k, v in times.items()},
        }
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def prepare(root: Path, pieces: int, demo_steps: int) -> dict:
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.core.paths import viml_home
    from viml.demo.past_edits import MANIFEST, load_past_edits, write_past_edits
    from viml.demo.run import DemoConfig, ensure_features, ensure_world
    from viml.export_onnx.build import build_bundle
    from viml.training.pipeline import model_config_for
    from viml.training.train import TrainConfig, train

    config = DemoConfig(pieces=pieces, steps=demo_steps)
    demo_root = viml_home() / "demo"  # `viml demo`'s folders: each step reused when it is there
    world = ensure_world(demo_root / f"world-{config.name}", config)
    demo_features = ensure_features(demo_root / f"features-{config.name}", world, config)
    checkpoint = train(  # what `viml demo` trains (same folder and settings: done once for both)
        demo_features,
        model_config_for(demo_features),
        TrainConfig(steps=config.steps, text_methods=["tags"], seed=config.seed),
        demo_root / f"run-{config.name}-tags",
        progress=False,
        provenance=demo_features.provenance,
    )
    bundles = root / "bundles"
    demo = bundles / "demo"
    if (
        not (demo / "manifest.json").exists()
        or (demo / "manifest.json").stat().st_mtime < checkpoint.stat().st_mtime
    ):
        build_bundle(
            "demo", clip=config.clip, checkpoint=checkpoint, kind="demo", force=True, output_dir=bundles
        )
    zero_shot = bundles / "zero-shot"
    if not (zero_shot / "manifest.json").exists():
        build_bundle("zero-shot", force=True, output_dir=bundles)
    catalog = root / "catalog.sqlite"
    with Catalog(catalog) as opened:
        scan(opened, world.root / "music", bundle=demo, progress=False)
    edits = root / f"past-edits-{config.name}"
    if not (edits / MANIFEST).exists():
        write_past_edits(world, edits, seed=0, formats=FORMATS, spans_per_piece=SPANS_PER_PIECE)
    return {
        "world": world,
        "demo": demo,
        "demo checkpoint": checkpoint,
        "zero-shot": zero_shot,
        "catalog": catalog,
        "edits": edits,
        "projects": load_past_edits(edits),
    }


def harvest_all(edits: Path, catalog_path: Path) -> tuple[list, bool]:
    """The OTIO folder's pairs, and whether FCP7 XML and Kdenlive give the same ones (to the millisecond)."""
    from viml.catalog.store import Catalog
    from viml.learning.harvest import harvest

    def key(pair) -> tuple:
        return (Path(pair.project).stem, pair.video, round(pair.video_in, 2), round(pair.video_out, 2),
                pair.music, round(pair.music_offset, 2))  # fmt: skip

    found = {}
    with Catalog(catalog_path, read_only=True) as catalog:
        for suffix in FORMATS:
            found[suffix] = harvest([edits / suffix.lstrip(".")], catalog).pairs
    same = all(sorted(map(key, found[s])) == sorted(map(key, found[".otio"])) for s in FORMATS)
    return found[".otio"], same


def features(setup: dict, pairs: list) -> LearnSet:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.learning.features import pair_features

    with Catalog(setup["catalog"], read_only=True) as catalog:
        learned = pair_features(pairs, open_bundle(setup["demo"]), catalog, progress=False)
    if learned.skipped:
        print(f"{len(learned.skipped)} pairs skipped, e.g. {learned.skipped[0].why}", file=sys.stderr)
    return learned


def _projects_of(learned: LearnSet) -> set[str]:
    return {pair.project for pair in learned.pairs.values()}


def draw(pool: list, learned: LearnSet, size: int, seed: int) -> list[str]:
    """`size` training pairs (item ids), whole projects in a seeded order, the last one cut short."""
    by_project: dict[str, list[str]] = {}
    for item in learned.features.items:
        by_project.setdefault(learned.pairs[item.id].project, []).append(item.id)
    order = [p.files[".otio"] for p in pool]
    random.Random(seed).shuffle(order)
    chosen: list[str] = []
    for project in order:
        chosen += by_project.get(project, [])
        if len(chosen) >= size:
            break
    if len(chosen) < size:
        raise SystemExit(f"only {len(chosen)} training edits exist; use smaller --sizes or more --pieces")
    return chosen[:size]


def train_and_rank(
    setup: dict,
    learned: LearnSet,
    chosen: list[str],
    heldout: list,
    start: str,
    seed: int,
    steps: int,
    root: Path,
) -> RetrievalResult:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.learning.evaluate import evaluate_model
    from viml.learning.finetune import FRESH_MODEL, FineTuneConfig, fine_tune
    from viml.learning.learn import run_key
    from viml.training.model import ViMLConfig, load_checkpoint

    demo = open_bundle(setup["demo"])
    picked, held = set(chosen), {item.id for item in heldout}
    for item in learned.features.items:
        item.split = "train" if item.id in picked else "test" if item.id in held else "unused"
    fresh = start == "fresh towers"
    initial = None if fresh else setup["demo checkpoint"]
    model = (
        ViMLConfig.named(FRESH_MODEL, video_dim=learned.features.video_dim,
                         text_dim=int(demo.models["text_encoder"]["embed_dim"]), music_dim=learned.music_dim)
        if fresh else load_checkpoint(initial)[0].config
    )  # fmt: skip
    per_epoch = math.ceil(len(chosen) / min(32, len(chosen)))
    config = FineTuneConfig(epochs=math.ceil(steps / per_epoch), seed=seed, device="auto")
    run = root / "runs" / run_key(learned, demo, not fresh, model, config)
    checkpoint = fine_tune(learned.features, model, config, run, initial, progress=False)
    with Catalog(setup["catalog"], read_only=True) as catalog:
        return evaluate_model(
            load_checkpoint(checkpoint)[0], catalog, demo.analysis.analysis_id, heldout,
            [learned.music_hash[item.id] for item in heldout],
        )  # fmt: skip


def scene_words(world, video: str) -> str:
    """What the clip shows, in words a user would type: mood, energy and tempo (not instruments, genre)."""
    from viml.demo.world.attributes import ground_truth_tags
    from viml.demo.world.styles import STYLES

    piece = next(p for p in world.pieces if str(Path(world.video_path(p)).absolute()) == video)
    style = set(STYLES[piece.attributes.style].tags)
    return ", ".join(t for t in ground_truth_tags(piece.attributes) if t not in style)


def prompt_baseline(setup: dict, learned: LearnSet, heldout: list) -> RetrievalResult:
    """Today's prompt-only search: the zero-shot bundle through `viml suggest`'s Searcher."""
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest
    from viml.training.metrics import summarize

    bundle = open_bundle(setup["zero-shot"])
    ranks = []
    with Catalog(setup["catalog"]) as catalog:  # the zero-shot space is embedded into the bench's catalog
        searcher = Searcher(catalog, bundle)
        tracks = len(catalog.tracks())
        for item in heldout:
            pair = learned.pairs[item.id]
            request = SuggestRequest(prompt=scene_words(setup["world"], pair.video), top=tracks)
            found = [s.path for s in searcher.suggest(request).suggestions]
            ranks.append(found.index(pair.music) + 1 if pair.music in found else tracks)
    return summarize(np.array(ranks), tracks)


def demo_row(setup: dict, learned: LearnSet, heldout: list) -> RetrievalResult:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.learning.evaluate import evaluate_bundle

    with Catalog(setup["catalog"], read_only=True) as catalog:
        return evaluate_bundle(
            open_bundle(setup["demo"]), catalog, [learned.pairs[i.id] for i in heldout],
            [learned.music_hash[i.id] for i in heldout],
        )  # fmt: skip


def run_viml_learn(
    setup: dict, learned: LearnSet, heldout_projects: set[str], steps: int, root: Path
) -> dict:
    """`viml learn` on the OTIO folder in a child process with its own VIML_HOME, from the demo bundle."""
    train_pairs = sum(1 for p in learned.pairs.values() if p.project not in heldout_projects)
    epochs = math.ceil(steps / math.ceil(train_pairs / 32))
    command = [sys.executable, "-m", "viml.cli", "learn", str(setup["edits"] / "otio"), "--bundle", str(setup["demo"]),
               "--catalog", str(setup["catalog"]), "--epochs", str(epochs), "--out", "bench-learned", "--force",
               "--no-default", "--no-llm", "--json"]  # fmt: skip
    for project in sorted(heldout_projects):
        command += ["--holdout-project", project]
    env = {**os.environ, "VIML_HOME": str(root / "home"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"viml learn failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row_of(result: RetrievalResult) -> dict:
    from viml.learning.evaluate import metrics_row

    return metrics_row(result)


def mean_row(results: list[RetrievalResult]) -> dict:
    rows = [row_of(r) for r in results]
    means = {
        key: round(float(np.mean([r[key] for r in rows])), 2) for key in ("median rank", "R@1", "R@5", "R@10")
    }
    return (
        means
        | {"queries": rows[0]["queries"], "pool": rows[0]["pool"]}
        | {
            "seeds": len(rows),
            "median rank per seed": [r["median rank"] for r in rows],
            "R@10 per seed": [r["R@10"] for r in rows],
        }
    )


def ratios(row: dict, baseline: dict) -> dict:
    return {
        "R@10 / baseline R@10": round(row["R@10"] / baseline["R@10"], 2) if baseline["R@10"] else None,
        "baseline median rank / median rank": round(baseline["median rank"] / row["median rank"], 2),
    }


def report(rows, baseline, learned, heldout, setup, sizes, seeds, steps, formats_agree, cli, times) -> None:
    world = setup["world"]
    print(
        f"Learning from past edits, demo world: {len(world.pieces)} pieces, {len(learned.features.items)} "
        f"harvested edits; held out {len(heldout)} edits of the test-split projects; each clip's music ranked "
        f"among every catalogued track (N={baseline['pool']}); seeds {seeds}; {steps} steps per run"
    )
    print(f"OTIO, FCP7 XML and Kdenlive give the same pairs: {'yes' if formats_agree else 'NO'}")
    header = f"{'row':<52} {'MedR':>7} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'R@10 ×':>7} {'MedR ×':>7}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        r = ratios(row, baseline)
        recall = r["R@10 / baseline R@10"]
        print(
            f"{name:<52} {row['median rank']:>7.1f} {row['R@1']:>6.1f} {row['R@5']:>6.1f} {row['R@10']:>6.1f} "
            f"{'n/a' if recall is None else f'{recall:.2f}':>7} {r['baseline median rank / median rank']:>7.2f}"
        )
    print(
        "ratios against the prompt-only baseline: R@10 × = row / baseline (n/a: the baseline's is 0), "
        "MedR × = baseline / row"
    )
    if cli is not None:
        start = cli["held-out metrics, start bundle"]
        print(
            f"viml learn: {cli['training pairs']} pairs from {cli['training projects']} projects; start bundle "
            f"on the same held-out edits: median rank {start['median rank']}, R@10 {start['R@10']} "
            f"(the demo row above: {rows['demo bundle, clip only']['median rank']}, "
            f"{rows['demo bundle, clip only']['R@10']}); {cli['default decision']}"
        )
    print("frame encoder: the demo's tiny CLIP with RANDOM weights; text: MiniLM; music: musicnn (catalog)")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))


if __name__ == "__main__":
    raise SystemExit(main())
