"""Where suggestions start, on the demo world: finer windows on measured downbeats vs the segment grid.

    python bench/offsets.py [--pieces 40] [--seed 5] [--json out.json]

1. Generates a demo world (real rendered music, each piece composed as MIDI, so its true downbeats are
   known: bench/beat_truth.py) and scans its music with the real models: musicnn and the rhythm
   analysis (BeatNet + our tracker). `viml convert-musicnn` / `viml convert-beatnet` run when needed.
2. Every piece's ground-truth tags are a prompt; every suggestion of every prompt is placed twice, in
   this run: with finer windows on measured downbeats (the default) and on the 10 s segment grid only
   (`SuggestRequest(fine_offsets=False)`, the baseline).
3. Placement: the share of suggested starts within 70 ms (mir_eval's beat tolerance) of a true beat and
   of a true downbeat of that track, and the median distance to the nearest true downbeat. Note: the
   world's pieces start on a downbeat, so grid starts (multiples of 10 s) are true downbeats whenever
   10 s is a whole number of bars (120, 96, 72, 60 BPM in 4/4): the grid is a strong baseline here.
4. Retrieval: Recall@1/5/10 and median rank of each prompt's own piece, sound only (words off: the
   world's file tags would name the piece), with and without the finer windows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from beat_truth import load_demo_world  # noqa: E402

from search import bench_bundle  # noqa: E402

TOLERANCE = 0.070
KS = (1, 5, 10)


def ensure_models() -> None:
    from viml.engine.music.manifest import MANIFEST_NAME, model_folder
    from viml.engine.music.rhythm.network import beatnet_folder

    if not (model_folder() / MANIFEST_NAME).exists():
        from viml.export_onnx.musicnn import convert

        convert()
    if not (beatnet_folder() / "manifest.json").exists():
        from viml.export_onnx.beatnet import convert as convert_beatnet

        convert_beatnet()


def placement(suggestions, truth: dict[str, np.ndarray]) -> list[float]:
    """Distance (s) from each suggestion's start to the nearest true time of its track in `truth`."""
    distances = []
    for suggestion in suggestions:
        times = truth.get(suggestion.path)
        if times is not None and len(times):
            distances.append(float(np.min(np.abs(times - suggestion.start))))
    return distances


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pieces", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--top", type=int, default=10, help="suggestions placed per prompt")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog, path_key
    from viml.core.paths import cache_dir
    from viml.demo.world.generate import generate_world
    from viml.search import Searcher, SuggestRequest

    ensure_models()
    runtime = bench_bundle(None, cache_dir() / "search_bench")
    figures: dict = {"pieces": args.pieces, "seed": args.seed, "tolerance_seconds": TOLERANCE}
    with tempfile.TemporaryDirectory(prefix="viml-offsets-") as temp:
        root = Path(temp) / "world"
        started = time.perf_counter()
        world = generate_world(root, pieces=args.pieces, seed=args.seed, seconds=(30.0, 60.0), workers=2)
        songs = load_demo_world(root)
        truth = {path_key(str(song.audio)): song.downbeats for song in songs}
        beats = {path_key(str(song.audio)): song.beats for song in songs}
        print(f"world: {len(world.pieces)} pieces in {time.perf_counter() - started:.0f} s", flush=True)
        with Catalog(Path(temp) / "catalog.db") as catalog:
            started = time.perf_counter()
            summary = scan(catalog, str(world.music_path(world.pieces[0]).parent), jobs=2, progress=False)
            figures["scan_seconds"] = round(time.perf_counter() - started, 1)
            figures["rhythm_analysis"] = summary.rhythm
            failed = "; ".join(f"{f.path}: {f.message}" for f in summary.failures)
            print(
                f"scan: {summary.analysed} analysed, rhythm {summary.rhythm}"
                + (f"; failed: {failed}" if failed else ""),
                flush=True,
            )
            searcher = Searcher(catalog, runtime)
            rows = {}
            for label, fine in (("finer windows on downbeats", True), ("segment grid only", False)):
                distances, to_beats, ranks = [], [], []
                for piece in world.pieces:
                    own = path_key(str(world.music_path(piece)))
                    prompt = ", ".join(piece.tags)
                    common = {"prompt": prompt, "words_weight": 0, "meaning_weight": 0, "fine_offsets": fine}
                    ranked = searcher.suggest(SuggestRequest(top=len(world.pieces), **common)).suggestions
                    paths = [s.path for s in ranked]
                    ranks.append(paths.index(own) + 1 if own in paths else len(world.pieces))
                    distances += placement(ranked[: args.top], truth)
                    to_beats += placement(ranked[: args.top], beats)
                distances = np.array(distances)
                ranks = np.array(ranks)
                rows[label] = {
                    "starts placed": int(len(distances)),
                    "share on a true downbeat": round(float(np.mean(distances <= TOLERANCE)), 3),
                    "share on a true beat": round(float(np.mean(np.array(to_beats) <= TOLERANCE)), 3),
                    "median distance to a true downbeat seconds": round(float(np.median(distances)), 3),
                    **{f"recall@{k}": round(float(np.mean(ranks <= k)), 3) for k in KS},
                    "median rank": float(np.median(ranks)),
                }
            figures["results"] = rows
    print(f"\n{args.pieces} demo pieces, top {args.top} suggestions of each piece's tags as the prompt")
    print(
        f"{'placement':30} {'on beat':>8} {'on downbeat':>12} {'median dist':>12} {'R@1':>6} {'R@5':>6} "
        f"{'R@10':>6} {'MedR':>6}"
    )
    for label, row in rows.items():
        print(
            f"{label:30} {row['share on a true beat']:8.3f} {row['share on a true downbeat']:12.3f} "
            f"{row['median distance to a true downbeat seconds']:11.3f}s {row['recall@1']:6.3f} "
            f"{row['recall@5']:6.3f} {row['recall@10']:6.3f} {row['median rank']:6.1f}"
        )
    fine, grid = rows["finer windows on downbeats"], rows["segment grid only"]
    ratio = fine["share on a true downbeat"] / max(grid["share on a true downbeat"], 1e-9)
    print(
        f"on-downbeat share: {ratio:.1f}x the segment grid's; R@10 {fine['recall@10']:.3f} vs {grid['recall@10']:.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
