"""A clip's candidate rule (search/candidates.py clip_scores) against alternatives, on big_search.py's tables.

    python bench/clip_rules.py [--segments 1000000] [--clips 40] [--json out.json]

The table and the 40 clips (K = 3 rows of tracks not in the library) are bench/big_search.py's, made from
its seed catalog (bench/search.py's set 2). Neighbours are exact (computed before the timing), so each
figure is the rule's own: recall@50 of the exact top 50, tracks scored (p50), and the rule's CPU time
(p50; the machine may be shared). Ratios are against the kept rule (the largest window excess seen) in
the same run. Rules:
- "largest excess" (kept): a track is scored while its mean similarity plus the largest excess (best
  window - mean similarity) seen among the scored tracks passes the 50th best score so far; "2nd/3rd
  largest": the second or third largest instead;
- "per spread": the largest ratio of excess to spread seen, times each track's spread, where a track's
  spread is the RMS distance of its unit segments from their mean, sqrt(1 - |mean|^2);
- "per spread and windows": the same with spread x sqrt(2 ln(windows)) (the expected maximum of that
  many draws grows so).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from big_search import Generator, clip_queries, seed_table  # noqa: E402
from viml.search import candidates  # noqa: E402
from viml.search.candidates import SubsetScorer  # noqa: E402
from viml.search.ranking import top_tracks, window_scores  # noqa: E402

NEED = 50


def rule_scores(table, lookup, clip, extra, scale, rank):
    """clip_scores' rounds with the stand-in excess of `rank` (1: the largest), per unit of `scale`."""
    closeness = lookup.means @ clip.mean(axis=0)
    scorer = SubsetScorer(table, clip, None, lookup)
    scorer.add(np.argpartition(-closeness, candidates.CLIP_FIRST - 1)[: candidates.CLIP_FIRST])
    scorer.add(extra)
    while True:
        scored = np.flatnonzero(scorer.scored)
        best = scorer.best[scored]
        cutoff = float(np.partition(best, len(best) - NEED)[len(best) - NEED])
        ratio = (best - closeness[scored]) / (1.0 if scale is None else scale[scored])
        allowance = float(np.partition(ratio, len(ratio) - rank)[len(ratio) - rank])
        more = np.flatnonzero(
            (closeness + allowance * (1.0 if scale is None else scale) > cutoff) & ~scorer.scored
        )
        if len(more) == 0:
            return scorer.best, scorer.scored
        if len(scored) + len(more) > len(table.counts) // 4:
            return None  # the exact path
        scorer.add(more)


def main() -> int:
    from viml.core.paths import cache_dir

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--catalog", type=Path, help="seed catalog (default: bench/search.py's set 2)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    seed, _space = seed_table(args.catalog or cache_dir() / "search_bench" / "catalog-2.sqlite")
    table = Generator(seed, np.random.default_rng(0)).table(args.segments // 24)  # big_search.py's table
    clips = clip_queries(Generator(seed, np.random.default_rng(1)), args.clips)
    lookup = candidates.TrackLookup(table)
    means = lookup.means
    _ = lookup.views
    spread = np.sqrt(np.maximum(1.0 - np.einsum("ij,ij->i", means, means), 1e-6)).astype(np.float32)
    windows = np.sqrt(2 * np.log(np.maximum(table.counts - 2, 2))).astype(np.float32)
    embeddings = np.asarray(table.embeddings)
    owner_of = table.starts
    truths, extras = [], []
    for clip in clips:  # the exact top 50, and the mean row's nearest segments' tracks (exact neighbours)
        exact = window_scores(embeddings, table.starts, table.counts, clip)
        truths.append(set(top_tracks(exact.best, None, NEED).tolist()))
        mean = clip.mean(axis=0)
        near = np.argpartition(-(embeddings @ (mean / np.linalg.norm(mean))), candidates.CLIP_NEIGHBOURS - 1)
        extras.append(
            np.unique(np.searchsorted(owner_of, near[: candidates.CLIP_NEIGHBOURS], side="right") - 1)
        )
    rules = {"largest excess (kept)": (None, 1), "2nd largest excess": (None, 2), "3rd largest excess": (None, 3),
             "per spread": (spread, 1), "per spread and windows": (spread * windows, 1),
             "per spread and windows, 2nd largest": (spread * windows, 2)}  # fmt: skip
    figures: dict = {
        "segments": int(len(embeddings)),
        "tracks": int(len(table.counts)),
        "clips": len(clips),
        "rules": {},
    }
    for name, (scale, rank) in rules.items():
        recalls, scored, cpu = [], [], []
        for clip, extra, truth in zip(clips, extras, truths, strict=True):
            start = time.process_time()
            found = rule_scores(table, lookup, clip, extra, scale, rank)
            cpu.append((time.process_time() - start) * 1000)
            if found is None:
                recalls.append(1.0)
                scored.append(len(table.counts))
                continue
            best, mask = found
            recalls.append(len(set(top_tracks(best, mask, NEED).tolist()) & truth) / NEED)
            scored.append(int(mask.sum()))
        figures["rules"][name] = {"recall@50": round(float(np.mean(recalls)), 4), "worst clip recall@50": min(recalls),
                                  "tracks scored p50": statistics.median(scored), "CPU p50 ms": round(statistics.median(cpu), 1)}  # fmt: skip
    kept = figures["rules"]["largest excess (kept)"]
    for name, row in figures["rules"].items():
        row["tracks scored, ratio to the kept rule"] = round(
            row["tracks scored p50"] / kept["tracks scored p50"], 3
        )
        row["CPU, ratio to the kept rule"] = round(row["CPU p50 ms"] / kept["CPU p50 ms"], 3)
        tracks_ratio, cpu_ratio = (
            row["tracks scored, ratio to the kept rule"],
            row["CPU, ratio to the kept rule"],
        )
        print(f"{name:38s} recall@50 {row['recall@50']:.4f} (worst {row['worst clip recall@50']:.2f})  tracks scored "
              f"{row['tracks scored p50']:>7.0f} ({tracks_ratio:.2f}x)  CPU {row['CPU p50 ms']:.1f} ms "
              f"({cpu_ratio:.2f}x)", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
