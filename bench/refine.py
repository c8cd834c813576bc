"""Refine in words on real music: does "like X but calmer / slower / without drums" move what was asked?

    python bench/refine.py [--bundle NAME|FOLDER] [--sets 2,1] [--top 10] [--json out.json]

The libraries are bench/search.py's (the labelled real-music sets: Debian game-music packages fetched with
`apt-get download` into <cache>/realmusic, one minute of each track, scanned with musicnn and, when BeatNet
is converted (`viml convert-beatnet`), the rhythm analysis; ranked with a zero-shot bundle). Every track X
of a library is a reference, searched through `viml.search.Searcher` in this run:

- the baseline: like X alone (its ranking is `viml similar X`'s; checked for every X here), and
- like X + each word: calmer / louder (loudness, LUFS), slower / faster (the measured tempo, BPM; only
  references with a confident one), darker / brighter (spectral centroid, Hz), without drums (the taggers'
  drum probability), and "calmer, no drums" (both must move).

For each, over the top K results (each result's best part; a track's tempo): the share of references where
their mean lies on the asked side of X's own value (X's whole track), refined vs baseline, and the mean
change. Similarity to X: the cosine of the tracks' average sounds (music-model space centred on the
library, as `viml similar`), the top K's mean for refined, baseline and a random other track; the stated
level is X's closest quarter (the library's 75th percentile of cosines to X): "moved and still like X" counts
a reference when the attribute moved and the top K's mean cosine stays above that level.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search import SETS, bench_bundle, prepare_set  # noqa: E402

# word -> [(attribute, direction)]: what it asks to move, and which way relative to X
WORDS: dict[str, list[tuple[str, int]]] = {
    "calmer": [("loudness", -1)],
    "louder": [("loudness", 1)],
    "slower": [("tempo", -1)],
    "faster": [("tempo", 1)],
    "darker": [("brightness", -1)],
    "brighter": [("brightness", 1)],
    "without drums": [("drums", -1)],
    "calmer, no drums": [("loudness", -1), ("drums", -1)],
}
UNITS = {"loudness": "LU", "tempo": "BPM", "brightness": "Hz", "drums": "p"}
SIMILAR_QUANTILE = 75.0  # the stated level: X's closest quarter of the library


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", help="zero-shot bundle name or folder (default: bench/search.py's)")
    parser.add_argument("--sets", default="2,1", help="real-music sets to run (default 2,1)")
    parser.add_argument(
        "--top", type=int, default=10, help="results per query that are measured (default 10)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="scan worker processes (default 1)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--sweep", action="store_true",
        help="first: the share moved and still like X for MOVE_WEIGHT and TERM_WEIGHT (search/like.py) on "
        "a grid, on the first set only (how the defaults were chosen; then reported on every set)",
    )  # fmt: skip
    args = parser.parse_args()

    from viml.core.paths import cache_dir

    root, work = cache_dir() / "realmusic", cache_dir() / "search_bench"
    runtime = bench_bundle(args.bundle, work)
    print(f"bundle: {runtime.name} ({runtime.kind})")
    from viml.search import like

    figures: dict = {"bundle": runtime.name, "results measured per query": args.top,
                     "weights": {"MOVE_WEIGHT": like.MOVE_WEIGHT, "TERM_WEIGHT": like.TERM_WEIGHT}, "sets": {}}  # fmt: skip
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    for number, name in enumerate(names):
        if name not in SETS:
            parser.error(f"unknown set {name!r}: choose from {', '.join(SETS)}")
        data = prepare_set(name, root, work, runtime, args.jobs)
        if args.sweep and number == 0:
            figures[f"weight sweep on set {name}"] = sweep(data["library"]["catalog"], runtime, args.top)
        figures["sets"][f"set {name}"] = run_set(data["library"]["catalog"], runtime, args.top)
    figures["all sets"] = pooled(figures["sets"].values())
    print_rows("all sets", figures["all sets"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


MOVE_GRID = (0.5, 1.0, 2.0, 4.0)
TERM_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
MOVE_WORDS = ("calmer", "louder", "slower", "faster", "darker", "brighter")


def sweep(catalog_path: Path, runtime, top: int) -> dict:
    """Mean share 'moved and still like X' over the move words for each MOVE_WEIGHT, and for "without
    drums" for each TERM_WEIGHT (the two act on different words, so each grid is swept alone)."""
    from viml.search import like

    kept = like.MOVE_WEIGHT, like.TERM_WEIGHT
    out: dict = {"MOVE_WEIGHT": {}, "TERM_WEIGHT": {}}
    try:
        for name, grid, words in (
            ("MOVE_WEIGHT", MOVE_GRID, MOVE_WORDS),
            ("TERM_WEIGHT", TERM_GRID, ("without drums",)),
        ):
            for weight in grid:
                setattr(like, name, weight)
                rows = collect(catalog_path, runtime, top, words)
                both = [
                    np.mean([r["moved"] and r["still like X"] for r in rows[w]]) for w in words if rows[w]
                ]
                moved = [np.mean([r["moved"] for r in rows[w]]) for w in words if rows[w]]
                out[name][str(weight)] = {"moved": round(float(np.mean(moved)), 3),
                                          "moved and still like X": round(float(np.mean(both)), 3)}  # fmt: skip
                print(
                    f"sweep {name}={weight:g}: moved {np.mean(moved):.3f}, moved and still like X {np.mean(both):.3f}"
                )
    finally:
        like.MOVE_WEIGHT, like.TERM_WEIGHT = kept
    return out


def collect(catalog_path: Path, runtime, top: int, words=tuple(WORDS)) -> dict[str, list[dict]]:
    """Each word's rows (Measures.row) with every track of the library as the reference."""
    from viml.catalog.store import Catalog
    from viml.search import Searcher, SuggestRequest

    with Catalog(catalog_path, must_exist=True) as catalog:
        searcher = Searcher(catalog, runtime)
        measure = Measures(searcher)
        rows: dict[str, list[dict]] = {word: [] for word in words}
        for x, path in enumerate(measure.table.paths):
            baseline = searcher.suggest(SuggestRequest(like=path, top=top)).suggestions
            level = float(np.percentile(np.delete(measure.cosines[x], x), SIMILAR_QUANTILE))
            random_cos = float(np.delete(measure.cosines[x], x).mean())
            for word in words:
                asked = WORDS[word]
                if any(not math.isfinite(measure.reference(x, a)) for a, _ in asked):
                    continue
                refined = searcher.suggest(SuggestRequest(like=path, prompt=word, top=top)).suggestions
                rows[word].append(measure.row(x, asked, refined, baseline, level, random_cos))
    return rows


def run_set(catalog_path: Path, runtime, top: int) -> dict:
    rows = collect(catalog_path, runtime, top)
    same, total = like_only_as_similar(catalog_path, runtime, top)
    print(f"\n=== {catalog_path.name}: {total} tracks, each the reference X once; top {top} measured")
    print(f"like-only == `viml similar` ranking (top {top}): {same} of {total} references")
    figures = summarise(rows)
    figures["references"] = total
    figures["like-only ranks as similar"] = f"{same} of {total}"
    print_rows(catalog_path.name, figures)
    figures["rows"] = rows
    return figures


def like_only_as_similar(catalog_path: Path, runtime, top: int) -> tuple[int, int]:
    """For how many references X `like X` (no words) returns `viml similar X`'s top, in its order."""
    from viml.catalog.store import Catalog
    from viml.search import Searcher, SuggestRequest

    with Catalog(catalog_path, must_exist=True) as catalog:
        searcher = Searcher(catalog, runtime)
        paths = catalog.load_tracks(None).paths
        same = 0
        for path in paths:
            similar, _ = searcher.similar(path, top=top)
            liked = searcher.suggest(SuggestRequest(like=path, top=top)).suggestions
            same += [s.path for s in liked] == [s.path for s in similar]
    return same, len(paths)


class Measures:
    """What the benchmark reads of the catalog, independently of the ranking: each segment's stored
    descriptors and drum probability, each track's measured tempo, and the tracks' average sounds."""

    def __init__(self, searcher) -> None:
        from viml.engine.vectors import normalize_rows
        from viml.search.filters import MEASURED_TEMPO_CONFIDENCE
        from viml.search.prompt_terms import concept_columns

        catalog = searcher.catalog
        self.seconds = searcher.segment_seconds
        self.table = table = catalog.load_tracks(None)
        descriptors = catalog.segment_descriptors(table)
        tags = catalog.segment_tag_matrix(table)
        drums = concept_columns(catalog.tag_names())["drums"]
        loudness = np.asarray(descriptors.get("loudness", np.full(len(tags), np.nan)), float)
        audible = np.isfinite(loudness) & (loudness >= -70.0)
        self.values = {
            "loudness": np.where(audible, loudness, np.nan),
            "brightness": np.where(
                audible, descriptors.get("brightness", np.full(len(tags), np.nan)), np.nan
            ),
            "drums": tags[:, drums].max(axis=1).astype(float),
        }
        tempos = catalog.measured_tempos()
        self.tempo = np.array(
            [t if c >= MEASURED_TEMPO_CONFIDENCE else np.nan
             for t, c in (tempos.get(h, (np.nan, 0.0)) for h in table.hashes)]
        )  # fmt: skip
        centred = normalize_rows(table.embeddings - table.embeddings.mean(axis=0))
        means = normalize_rows(np.add.reduceat(centred, table.starts, axis=0) / table.counts[:, None])
        self.cosines = means @ means.T
        self.index = {p: i for i, p in enumerate(table.paths)}

    def _rows(self, index: int) -> slice:
        first = int(self.table.starts[index])
        return slice(first, first + int(self.table.counts[index]))

    def reference(self, index: int, attribute: str) -> float:
        if attribute == "tempo":
            return float(self.tempo[index])
        return _mean(self.values[attribute][self._rows(index)])

    def result(self, suggestion, attribute: str) -> float:
        """A result's best part (the segments overlapping [start, end)), or its track's tempo."""
        index = self.index[suggestion.path]
        if attribute == "tempo":
            return float(self.tempo[index])
        rows = self._rows(index)
        starts = self.table.segment_starts[rows]
        inside = (starts + self.seconds > suggestion.start) & (starts < suggestion.end)
        return _mean(self.values[attribute][rows][inside])

    def row(self, x: int, asked, refined, baseline, level: float, random_cos: float) -> dict:
        def side(results) -> tuple[bool, dict]:
            moved, changes = True, {}
            for attribute, direction in asked:
                value = _mean(np.array([self.result(s, attribute) for s in results]))
                change = value - self.reference(x, attribute)
                changes[attribute] = change
                moved &= bool(math.isfinite(change) and direction * change > 0)
            return moved, changes

        def cosine(results) -> float:
            return (
                float(np.mean([self.cosines[x, self.index[s.path]] for s in results]))
                if results
                else math.nan
            )

        moved, changes = side(refined)
        was, was_changes = side(baseline)
        return {"reference": self.table.paths[x], "moved": moved, "baseline moved": was,
                "change": changes, "baseline change": was_changes, "cosine": cosine(refined),
                "baseline cosine": cosine(baseline), "random cosine": random_cos, "similar level": level,
                "still like X": cosine(refined) > level}  # fmt: skip


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def summarise(rows: dict[str, list[dict]]) -> dict:
    out: dict = {}
    for word, found in rows.items():
        if not found:
            out[word] = {"queries": 0, "note": "no reference has a measured value (tempo: convert BeatNet)"}
            continue
        attributes = [a for a, _ in WORDS[word]]
        out[word] = {
            "queries": len(found),
            "asked": ", ".join(f"{a} {'lower' if d < 0 else 'higher'}" for a, d in WORDS[word]),
            "share moved, refined": _share(found, "moved"),
            "share moved, baseline (like-only)": _share(found, "baseline moved"),
            "share moved and still like X (top mean cosine above X's closest quarter)": round(
                float(np.mean([r["moved"] and r["still like X"] for r in found])), 3
            ),
            "mean change, refined": {a: _average(found, "change", a) for a in attributes},
            "mean change, baseline": {a: _average(found, "baseline change", a) for a in attributes},
            "mean cosine to X, refined": _plain(found, "cosine"),
            "mean cosine to X, baseline": _plain(found, "baseline cosine"),
            "mean cosine to X, random track": _plain(found, "random cosine"),
            "stated level (mean over X of the library's 75th percentile of cosines to X)": _plain(
                found, "similar level"
            ),
        }
    return out


def pooled(sets) -> dict:
    rows: dict[str, list[dict]] = {word: [] for word in WORDS}
    for figures in sets:
        for word in WORDS:
            rows[word].extend(figures["rows"][word])
    return summarise(rows)


def _share(rows: list[dict], key: str) -> float:
    return round(float(np.mean([r[key] for r in rows])), 3)


def _plain(rows: list[dict], key: str) -> float:
    return round(float(np.nanmean([r[key] for r in rows])), 3)


def _average(rows: list[dict], key: str, attribute: str) -> float:
    return round(float(np.nanmean([r[key][attribute] for r in rows])), 3)


def print_rows(title: str, figures: dict) -> None:
    print(f"\n{title}: share of references whose top results moved the asked way (refined vs like-only)")
    print(f"{'words':18} {'n':>4} {'moved':>6} {'base':>6} {'ratio':>6} {'moved+like X':>13} "
          f"{'change (refined / base)':>30} {'cos refined/base/random (level)':>34}")  # fmt: skip
    for word in WORDS:
        row = figures.get(word, {})
        if not row.get("queries"):
            print(f"{word:18} {0:>4}  {row.get('note', '')}")
            continue
        moved, base = row["share moved, refined"], row["share moved, baseline (like-only)"]
        both = row["share moved and still like X (top mean cosine above X's closest quarter)"]
        change = "; ".join(
            f"{a} {row['mean change, refined'][a]:+.2f}/{row['mean change, baseline'][a]:+.2f} {UNITS[a]}"
            for a in row["mean change, refined"]
        )
        cos = (f"{row['mean cosine to X, refined']:.2f}/{row['mean cosine to X, baseline']:.2f}/"
               f"{row['mean cosine to X, random track']:.2f} "
               f"({row['stated level (mean over X of the library' + chr(39) + 's 75th percentile of cosines to X)']:.2f})")  # fmt: skip
        ratio = f"x{moved / base:.2f}" if base else "inf"
        print(
            f"{word:18} {row['queries']:>4} {moved:6.2f} {base:6.2f} {ratio:>6} {both:13.2f} {change:>30} {cos:>34}"
        )


if __name__ == "__main__":
    sys.exit(main())
