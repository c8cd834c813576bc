"""Search over big libraries: exact window scoring vs the segment index (ANN) + exact scoring on candidates.

    python bench/big_search.py [--sizes 100000,1000000,5000000] [--libraries] [--json out.json]

Vectors with the real embedding's structure: the seed is a real catalog's retrieval space (bench/search.py
builds <cache>/search_bench/catalog-2.sqlite: real music, the zero-shot bundle's space). Synthetic tracks
draw a centre from the Gaussian of the real tracks' centres and their segments from the Gaussian of the
real within-track residuals, correlated along the track (AR(1) with the real consecutive-segment
correlation), so segments of one track are alike as in real music; printed: real vs synthetic cosines.
Queries are real: the labelled sets' prompts through the bundle's text tower (K = 1), and clips of K = 3
rows (three consecutive segments of a track not in the library, as a clip's music-side rows).

Per size, in one run: the exact path (window_scores over all + the 50 best tracks' starts refined by
search/offsets.py) and the index path (search/candidates.py on search/ann.py), p50 / p95 latency,
recall@50 of the index path's tracks against the exact ranking, memory, build time, and the update time
for 100 tracks added. --libraries first compares usearch, faiss-cpu and hnswlib on the same vectors.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from viml.catalog.store import Track, TrackTable  # noqa: E402
from viml.engine.vectors import normalize_rows  # noqa: E402
from viml.search import ann, candidates  # noqa: E402
from viml.search.offsets import FINE_CANDIDATES, place  # noqa: E402
from viml.search.ranking import top_tracks, window_scores  # noqa: E402

SEGMENT_SECONDS = 10.0


# --- the seed and the generator ------------------------------------------------------------------------


def seed_table(path: Path) -> tuple[TrackTable, str]:
    from viml.catalog.store import Catalog

    with Catalog(path, read_only=True) as catalog:
        spaces = [r[0] for r in catalog.connection.execute("SELECT DISTINCT space FROM retrieval")]
        if not spaces:
            raise SystemExit(f"{path} has no retrieval space: run bench/search.py first")
        return catalog.load_tracks(spaces[0], cache=False), spaces[0]


class Generator:
    """Synthetic tracks with the seed's structure (module docstring)."""

    def __init__(self, seed: TrackTable, rng: np.random.Generator) -> None:
        x = normalize_rows(np.asarray(seed.embeddings, np.float64))
        owner = np.repeat(np.arange(len(seed.counts)), seed.counts)
        centres = np.stack([x[owner == t].mean(0) for t in range(len(seed.counts))])
        residuals = x - centres[owner]
        self.mu = centres.mean(0)
        self.centre_basis = (centres - self.mu) / np.sqrt(len(centres))
        self.residual_basis = residuals / np.sqrt(len(residuals))
        same = owner[1:] == owner[:-1]
        a, b = residuals[1:][same], residuals[:-1][same]
        self.rho = float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))
        self.rng = rng
        self.dim = x.shape[1]

    def counts(self, tracks: int) -> np.ndarray:
        return self.rng.integers(12, 37, tracks)  # 2-6 minutes of 10 s segments

    def tracks(self, counts: np.ndarray) -> np.ndarray:
        total = int(counts.sum())
        out = np.empty((total, self.dim), np.float32)
        centre_basis = self.centre_basis.astype(np.float32)
        residual_basis = self.residual_basis.astype(np.float32)
        mix = np.float32(np.sqrt(1 - self.rho**2))
        row = 0
        for lo in range(0, len(counts), 2000):  # blocks of tracks: bounded memory at 5 M segments
            block = counts[lo : lo + 2000]
            rows = int(block.sum())
            first = np.concatenate([[0], np.cumsum(block)[:-1]])
            g = self.rng.standard_normal((rows, residual_basis.shape[0]), dtype=np.float32)
            for position in range(1, int(block.max())):  # AR(1) along each track, all tracks at once
                at = first[block > position] + position
                g[at] = self.rho * g[at - 1] + mix * g[at]
            centres = self.rng.standard_normal((len(block), centre_basis.shape[0]), dtype=np.float32)
            owner = np.repeat(np.arange(len(block)), block)
            values = self.mu.astype(np.float32) + (centres @ centre_basis)[owner] + g @ residual_basis
            out[row : row + rows] = normalize_rows(values)
            row += rows
        return out

    def table(self, tracks: int) -> TrackTable:
        counts = self.counts(tracks)
        return make_table(self.tracks(counts), counts, prefix="t")


def make_table(embeddings: np.ndarray, counts: np.ndarray, prefix: str) -> TrackTable:
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    paths = [f"/lib/{prefix}{i:07d}.flac" for i in range(len(counts))]
    hashes = [f"{prefix}{i:039d}" for i in range(len(counts))]
    segment_starts = (np.arange(int(counts.sum())) - np.repeat(starts, counts)) * SEGMENT_SECONDS
    tracks = [Track(p, h, "flac", float(c) * SEGMENT_SECONDS, None, None, None, None, None, "/lib")
              for p, h, c in zip(paths, hashes, counts, strict=True)]  # fmt: skip
    return TrackTable(paths, hashes, starts, counts.astype(np.int64), segment_starts.astype(np.float64),
                      embeddings, tracks)  # fmt: skip


def structure(table: TrackTable, rng: np.random.Generator, pairs: int = 20000) -> dict:
    """Mean cosine of segments of one track (consecutive) and of different tracks."""
    x = table.embeddings
    owner = np.repeat(np.arange(len(table.counts)), table.counts)
    i = rng.integers(0, len(x) - 1, pairs)
    same = owner[i] == owner[i + 1]
    j = rng.integers(0, len(x), pairs)
    other = owner[i] != owner[j]
    return {
        "within track (consecutive)": round(float(np.mean(np.sum(x[i][same] * x[i + 1][same], 1))), 3),
        "between tracks": round(float(np.mean(np.sum(x[i][other] * x[j][other], 1))), 3),
    }


# --- queries ---------------------------------------------------------------------------------------------


def prompt_queries(space_dim: int) -> list[np.ndarray]:
    """The labelled sets' prompts through the zero-shot bundle's text tower (K = 1)."""
    from viml.core.paths import cache_dir
    from viml.engine.runtime import open_bundle
    from viml.search.query import encode_query

    folder = cache_dir() / "search_bench" / "bundles" / "zero-shot"
    if not (folder / "manifest.json").is_file():
        return []
    bundle = open_bundle(str(folder))
    prompts = []
    for name in ("zero_shot_set.json", "search_set_2.json"):
        data = json.loads((Path(__file__).parent / name).read_text(encoding="utf-8"))
        prompts += [p["prompt"] for p in data["prompts"]]
    rows = [normalize_rows(np.atleast_2d(encode_query(bundle, None, 0.0, None, p, 1.0))) for p in prompts]
    return [r for r in rows if r.shape[1] == space_dim]


def clip_queries(generator: Generator, count: int, k: int = 3) -> list[np.ndarray]:
    counts = np.full(count, 12)
    rows = generator.tracks(counts)
    return [rows[i * 12 + 4 : i * 12 + 4 + k] for i in range(count)]


# --- the two paths ------------------------------------------------------------------------------------


def refine(table: TrackTable, scores, query: np.ndarray) -> None:
    """offsets.py's refinement of the 50 best tracks' starts, as Searcher.rank does (no rhythm here)."""
    for index in top_tracks(scores.best, None, FINE_CANDIDATES):
        first, count = int(table.starts[index]), int(table.counts[index])
        rows = slice(first, first + count)
        starts = table.segment_starts[rows]
        duration = float(starts[-1]) + SEGMENT_SECONDS
        place(table.embeddings[rows], starts, np.minimum(starts + SEGMENT_SECONDS, duration), query,
              SEGMENT_SECONDS, None, duration)  # fmt: skip


def exact_path(table: TrackTable, query: np.ndarray) -> tuple[np.ndarray, float]:
    """The 50 best tracks, and the milliseconds of the ranking before the refinement."""
    start = time.perf_counter()
    scores = window_scores(table.embeddings, table.starts, table.counts, query)
    ranked = (time.perf_counter() - start) * 1000
    refine(table, scores, query)
    return top_tracks(scores.best, None, FINE_CANDIDATES), ranked


def index_path(table, index, lookup, query) -> tuple[np.ndarray, float, bool]:
    start = time.perf_counter()
    found = candidates.candidate_scores(table, index, lookup, query, None, None, FINE_CANDIDATES)
    if found is None:
        return (*exact_path(table, query), False)
    scores, mask = found
    ranked = (time.perf_counter() - start) * 1000
    refine(table, scores, query)
    return top_tracks(scores.best, mask, FINE_CANDIDATES), ranked, True


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1000, result


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50 ms": round(statistics.median(ordered), 2),
            "p95 ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}  # fmt: skip


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_size(generator: Generator, segments: int, queries: dict[str, list[np.ndarray]], rng) -> dict:
    tracks = segments // 24
    start = time.perf_counter()
    table = generator.table(tracks)
    made = time.perf_counter() - start
    n = int(table.counts.sum())
    print(f"\n=== {n:,} segments ({tracks:,} tracks; generated in {made:.0f} s)", flush=True)
    before = rss_mb()
    start = time.perf_counter()
    index = ann.SegmentIndex.build(table)
    build = time.perf_counter() - start
    index_mb = rss_mb() - before
    lookup = candidates.TrackLookup(table)
    figures: dict = {"segments": n, "tracks": tracks, "matrix MB": round(table.embeddings.nbytes / 2**20),
                     "index build s": round(build, 1), "index memory MB (RSS growth)": round(index_mb),
                     "index memory MB (usearch)": round(index.index.memory_usage / 2**20)}  # fmt: skip
    print(f"index built in {build:.1f} s ({build / n * 1e6:.0f} µs/segment), {index_mb:.0f} MB")
    for kind, rows in queries.items():
        if not rows:
            continue
        exact_ms, index_ms, exact_rank, index_rank, recalls, used = [], [], [], [], [], 0
        for query in rows:
            t_exact, (exact_top, r_exact) = timed(exact_path, table, query)
            t_index, (index_top, r_index, ok) = timed(index_path, table, index, lookup, query)
            exact_ms.append(t_exact)
            index_ms.append(t_index)
            exact_rank.append(r_exact)
            index_rank.append(r_index)
            used += ok
            recalls.append(len(set(exact_top.tolist()) & set(index_top.tolist())) / len(exact_top))
        row = {"queries": len(rows), "exact": percentiles(exact_ms), "index": percentiles(index_ms),
               "exact ranking only": percentiles(exact_rank), "index ranking only": percentiles(index_rank),
               "speed-up (p50)": round(statistics.median(exact_ms) / statistics.median(index_ms), 1),
               "recall@50": round(float(np.mean(recalls)), 4), "min recall@50": round(min(recalls), 3),
               "index path taken": f"{used}/{len(rows)}"}  # fmt: skip
        figures[kind] = row
        print(f"{kind}: exact p50 {row['exact']['p50 ms']} ms p95 {row['exact']['p95 ms']} ms | index "
              f"p50 {row['index']['p50 ms']} ms p95 {row['index']['p95 ms']} ms | x{row['speed-up (p50)']} | "
              f"ranking only: exact {row['exact ranking only']['p50 ms']} ms, index {row['index ranking only']['p50 ms']} ms | "
              f"recall@50 {row['recall@50']} (min {row['min recall@50']}) | index path {row['index path taken']}",
              flush=True)  # fmt: skip
    # Incremental update: 100 tracks added (as a rescan would), against the build above.
    counts = generator.counts(100)
    extra = make_table(generator.tracks(counts), counts, prefix="new")
    grown = make_table(np.concatenate([table.embeddings, extra.embeddings]),
                       np.concatenate([table.counts, extra.counts]), prefix="t")  # fmt: skip
    grown.hashes[-100:] = extra.hashes
    start = time.perf_counter()
    how = index._update(grown, ann.table_contents(grown), threads=0)
    figures["update +100 tracks s"] = round(time.perf_counter() - start, 3)
    figures["update +100 tracks / build"] = round(figures["update +100 tracks s"] / build, 4)
    print(
        f"update with 100 tracks: {figures['update +100 tracks s']} s ({how}), "
        f"{figures['update +100 tracks / build']:.2%} of the build"
    )
    del table, grown, index
    gc.collect()
    return figures


# --- libraries ------------------------------------------------------------------------------------------


def compare_libraries(generator: Generator, segments: int, queries: list[np.ndarray], k: int = 200) -> dict:
    """usearch vs faiss-cpu vs hnswlib on the same vectors: build, latency, recall@k segments, memory."""
    counts = generator.counts(segments // 24)
    x = generator.tracks(counts)
    q = np.concatenate(queries).astype(np.float32)
    truth = np.argsort(-(x @ q.T), axis=0)[:k].T
    results = {}

    def record(name, build, search, memory):
        start = time.perf_counter()
        index = build()
        built = time.perf_counter() - start
        times, found = [], []
        for row in q:
            t0 = time.perf_counter()
            found.append(search(index, row[None]))
            times.append((time.perf_counter() - t0) * 1000)
        recall = np.mean(
            [len(set(f.tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]
        )
        results[name] = {"build s": round(built, 1), **percentiles(times), f"recall@{k}": round(float(recall), 4),
                         "index MB": round(memory(index) / 2**20)}  # fmt: skip
        print(f"{name}: {results[name]}", flush=True)

    keys = np.arange(len(x), dtype=np.uint64)
    try:
        from usearch.index import Index

        for dtype in ("f32", "f16", "i8"):

            def build(dtype=dtype):
                index = Index(ndim=x.shape[1], metric="cos", dtype=dtype, connectivity=16, expansion_add=128)
                index.add(keys, x)
                index.expansion_search = 2 * k
                return index

            record(f"usearch HNSW {dtype}", build, lambda i, r: i.search(r, k).keys.astype(np.int64),
                   lambda i: i.memory_usage)  # fmt: skip
    except ImportError:
        print("usearch not installed")
    try:
        import faiss

        for name, factory in (("faiss HNSW16 flat", "HNSW16,Flat"), ("faiss HNSW16 SQ8", "HNSW16,SQ8")):

            def build(factory=factory):
                index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = 128
                if not index.is_trained:
                    index.train(x)
                index.add(x)
                index.hnsw.efSearch = 2 * k
                return index

            record(name, build, lambda i, r: i.search(r, k)[1][0].astype(np.int64),
                   lambda i: faiss.serialize_index(i).nbytes)  # fmt: skip
    except ImportError:
        print("faiss-cpu not installed")
    try:
        import hnswlib

        def build():
            index = hnswlib.Index(space="ip", dim=x.shape[1])
            index.init_index(max_elements=len(x), M=16, ef_construction=128)
            index.add_items(x, np.arange(len(x)))
            index.set_ef(2 * k)
            return index

        record(
            "hnswlib HNSW16",
            build,
            lambda i, r: i.knn_query(r, k)[0][0].astype(np.int64),
            lambda i: len(x) * (x.shape[1] * 4 + 16 * 2 * 4 + 16),
        )  # fmt: skip (f32 vectors + level-0 links)
    except ImportError:
        print("hnswlib not installed")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--catalog", type=Path, help="seed catalog (default: bench/search.py's set 2 catalog)"
    )
    parser.add_argument("--sizes", default="100000,1000000", help="segment counts (default 100000,1000000)")
    parser.add_argument(
        "--libraries",
        type=int,
        nargs="?",
        const=200_000,
        default=0,
        help="first compare the ANN libraries on this many segments (default 200000)",
    )
    parser.add_argument("--clips", type=int, default=30, help="clip queries (K = 3) per size")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from viml.core.paths import cache_dir

    rng = np.random.default_rng(0)
    seed, space = seed_table(args.catalog or cache_dir() / "search_bench" / "catalog-2.sqlite")
    generator = Generator(seed, rng)
    sample = generator.table(200)
    figures: dict = {"seed": {"space": space, "tracks": len(seed.counts), "segments": len(seed.embeddings),
                              "dim": generator.dim, "consecutive-segment correlation": round(generator.rho, 3)},
                     "structure": {"real": structure(seed, rng), "synthetic": structure(sample, rng)},
                     "cores": os.cpu_count()}  # fmt: skip
    print(json.dumps(figures, indent=1))
    prompts = prompt_queries(generator.dim)
    clips = clip_queries(generator, args.clips)
    queries = {"prompt (K=1)": prompts, "clip (K=3)": clips}
    print(f"queries: {len(prompts)} prompts (real text embeddings), {len(clips)} clips")
    if args.libraries:
        print(f"\n=== ANN libraries on {args.libraries:,} segments (recall of the 200 nearest segments)")
        figures["libraries"] = compare_libraries(generator, args.libraries, (prompts or clips)[:40])
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        figures[f"{size} segments"] = measure_size(generator, size, queries, rng)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
