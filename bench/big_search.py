"""Search over big libraries: exact window scoring vs the segment index (ANN) + exact scoring on candidates.

    python bench/big_search.py [--sizes 100000,1000000] [--no-index-sizes 5000000] [--libraries]
                               [--index-cache DIR] [--json out.json]

Vectors with the real embedding's structure: the seed is a real catalog's retrieval space (bench/search.py
builds <cache>/search_bench/catalog-2.sqlite: real music, the zero-shot bundle's space). Synthetic tracks
draw a centre from the Gaussian of the real tracks' centres and their segments from the Gaussian of the
real within-track residuals, correlated along the track (AR(1) with the real consecutive-segment
correlation), so segments of one track are alike as in real music; printed: real vs synthetic cosines.
Queries are real: the labelled sets' prompts through the bundle's text tower (K = 1), and clips of K = 3
rows (three consecutive segments of a track not in the library, as a clip's music-side rows: the hard
case, their exact top 50 lies within ~0.01 cosine of thousands of other tracks).

Per size, in one run: the exact path (window_scores over all + the 50 best tracks' starts refined by
search/offsets.py) and the index path (search/candidates.py on search/ann.py), p50 / p95 wall latency
and p50 CPU time (the machine may be shared: CPU time is the steadier figure), the ratio index / exact
of both, recall@50 of the index path's tracks against the exact ranking, memory, build time and the
update time for 100 tracks added. The table of a size is generated the same way every run, and its index
is kept in --index-cache (verified against the table by search/ann.py like any index; its build time is
the one measured when it was built, printed with when and at what load).

--no-index-sizes (default 5,000,000): sizes whose graph is not built (hours on 2 shared cores). The
exact path is measured in full; the index path runs with the graph's neighbours replaced by exact ones
computed before the timing (so its recall is the candidate rule's own, its time is everything but the
graph search, which at 1 M is printed beside it); build time, update time and the index's memory are
extrapolated from the largest indexed size and labelled so. --libraries first compares usearch,
faiss-cpu and hnswlib on the same vectors.

BLAS keeps numpy's own thread count, as in a user's search (whose index path and refinement limit it to
one thread themselves: search/blas.py); OPENBLAS_NUM_THREADS=1 to compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from viml.catalog.store import Track, TrackTable  # noqa: E402
from viml.engine.vectors import normalize_rows  # noqa: E402
from viml.search import ann, candidates  # noqa: E402
from viml.search.offsets import FINE_CANDIDATES, TrackSegments, place_many  # noqa: E402
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

    def tracks(self, counts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        total = int(counts.sum())
        out = np.empty((total, self.dim), np.float32) if out is None else out
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

    def table(self, tracks: int, folder: Path | None = None) -> TrackTable:
        """`tracks` tracks; with `folder`, their matrix is a memory-mapped file there (as the catalog's
        matrix cache keeps it), not process memory."""
        counts = self.counts(tracks)
        out = None
        if folder is not None:
            out = np.lib.format.open_memmap(
                folder / "matrix.npy", "w+", np.float32, (int(counts.sum()), self.dim)
            )
        return make_table(self.tracks(counts, out), counts, prefix="t")


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


def prompt_queries(space_dim: int, folder: Path) -> list[np.ndarray]:
    """The labelled sets' prompts through the zero-shot bundle's text tower (K = 1)."""
    from viml.engine.runtime import open_bundle
    from viml.search.query import encode_query

    if not (folder / "manifest.json").is_file():
        print(f"no bundle at {folder}: no prompt queries (bench/search.py builds it)")
        return []
    bundle = open_bundle(str(folder))
    prompts = []
    for name in ("zero_shot_set.json", "search_set_2.json"):
        data = json.loads((Path(__file__).parent / name).read_text(encoding="utf-8"))
        prompts += [p["prompt"] for p in data["prompts"]]
    rows = [normalize_rows(np.atleast_2d(encode_query(bundle, None, 0.0, None, p, 1.0))) for p in prompts]
    return [r for r in rows if r.shape[1] == space_dim]


def clip_queries(generator: Generator, count: int, k: int = 3) -> list[np.ndarray]:
    rows = generator.tracks(np.full(count, 12))
    return [rows[i * 12 + 4 : i * 12 + 4 + k] for i in range(count)]


# --- the two paths ------------------------------------------------------------------------------------


def refine(table: TrackTable, scores, query: np.ndarray) -> None:
    """offsets.py's refinement of the 50 best tracks' starts, as Searcher.rank does (no rhythm here)."""
    segments = []
    for index in top_tracks(scores.best, None, FINE_CANDIDATES):
        first, count = int(table.starts[index]), int(table.counts[index])
        rows = slice(first, first + count)
        starts = table.segment_starts[rows]
        duration = float(starts[-1]) + SEGMENT_SECONDS
        ends = np.minimum(starts + SEGMENT_SECONDS, duration)
        segments.append(TrackSegments(table.embeddings[rows], starts, ends, None, duration))
    place_many(segments, query, SEGMENT_SECONDS)


def exact_path(table: TrackTable, query: np.ndarray) -> tuple[np.ndarray, float]:
    """The 50 best tracks, and the milliseconds of the ranking before the refinement."""
    start = time.perf_counter()
    scores = window_scores(table.embeddings, table.starts, table.counts, query)
    ranked = (time.perf_counter() - start) * 1000
    refine(table, scores, query)
    return top_tracks(scores.best, None, FINE_CANDIDATES), ranked


def index_path(table, index, lookup, query) -> tuple[np.ndarray, float, bool, int]:
    """The 50 best tracks, the ranking's milliseconds, whether the index was used, candidates scored."""
    start = time.perf_counter()
    found = candidates.candidate_scores(table, index, lookup, query, None, None, FINE_CANDIDATES)
    if found is None:
        return (*exact_path(table, query), False, len(table.counts))
    scores, mask = found
    ranked = (time.perf_counter() - start) * 1000
    refine(table, scores, query)
    return top_tracks(scores.best, mask, FINE_CANDIDATES), ranked, True, int(mask.sum())


class ExactNeighbours:
    """SegmentIndex.search's answers computed exactly, before the timing (--no-index-sizes): each query
    is run once untimed to fill the memo, then timed calls read it (the graph search left out)."""

    def __init__(self, table: TrackTable) -> None:
        self.table = table
        self.owner = np.repeat(np.arange(len(table.counts)), table.counts)
        self.memo: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.table.embeddings.shape[0])

    def search(self, rows, count, expansion, threads=0):
        rows = np.atleast_2d(np.asarray(rows, np.float32))
        tracks, sims = [], []
        for row in rows:
            key = row.tobytes()
            if key not in self.memo:
                similarities = np.asarray(self.table.embeddings @ row)
                top = np.argpartition(-similarities, 4096)[:4096]
                top = top[np.argsort(-similarities[top])]
                self.memo[key] = (self.owner[top], similarities[top])
            owner, similarity = self.memo[key]
            tracks.append(owner[:count])
            sims.append(similarity[:count])
        hashes = [self.table.hashes[t] for t in np.unique(np.concatenate(tracks))]
        return hashes, np.stack(tracks), np.stack(sims)


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


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def compare_paths(table, index, lookup, queries: dict[str, list[np.ndarray]], warm: bool = False) -> dict:
    """Per query kind: exact vs index path, wall and CPU time, recall@50 (module docstring)."""
    figures = {}
    for kind, rows in queries.items():
        if not rows:
            continue
        walls: dict[str, list[float]] = {"exact": [], "index": [], "exact ranking": [], "index ranking": []}
        cpus: dict[str, list[float]] = {"exact": [], "index": []}
        recalls, used, scored = [], 0, []
        for query in rows:
            if warm:
                index_path(table, index, lookup, query)  # fills ExactNeighbours' memo
            for name, run in (("exact", lambda q=query: exact_path(table, q)),
                              ("index", lambda q=query: index_path(table, index, lookup, q))):  # fmt: skip
                wall, cpu = time.perf_counter(), time.process_time()
                result = run()
                walls[name].append((time.perf_counter() - wall) * 1000)
                cpus[name].append((time.process_time() - cpu) * 1000)
                walls[f"{name} ranking"].append(result[1])
                if name == "exact":
                    exact_top = result[0]
                else:
                    used += result[2]
                    scored.append(result[3])
                    recalls.append(len(set(exact_top.tolist()) & set(result[0].tolist())) / len(exact_top))
        median = statistics.median
        row = {"queries": len(rows), "exact": percentiles(walls["exact"]), "index": percentiles(walls["index"]),
               "exact CPU p50 ms": round(median(cpus["exact"]), 2),
               "index CPU p50 ms": round(median(cpus["index"]), 2),
               "index / exact (wall p50)": round(median(walls["index"]) / median(walls["exact"]), 3),
               "index / exact (CPU p50)": round(median(cpus["index"]) / median(cpus["exact"]), 3),
               "exact ranking only": percentiles(walls["exact ranking"]),
               "index ranking only": percentiles(walls["index ranking"]),
               "refinement of the 50 best p50 ms": round(median(
                   [t - r for t, r in zip(walls["index"], walls["index ranking"], strict=True)]), 2),
               "recall@50": round(float(np.mean(recalls)), 4), "min recall@50": round(min(recalls), 3),
               "index path taken": f"{used}/{len(rows)}", "candidate tracks p50": round(median(scored)),
               "load average": load_average()}  # fmt: skip
        figures[kind] = row
        print(f"{kind}: exact p50 {row['exact']['p50 ms']} ms (CPU {row['exact CPU p50 ms']}) p95 "
              f"{row['exact']['p95 ms']} | index p50 {row['index']['p50 ms']} ms (CPU {row['index CPU p50 ms']}) "
              f"p95 {row['index']['p95 ms']} | index/exact wall {row['index / exact (wall p50)']} CPU "
              f"{row['index / exact (CPU p50)']} | ranking only: exact {row['exact ranking only']['p50 ms']} ms, "
              f"index {row['index ranking only']['p50 ms']} ms, refinement {row['refinement of the 50 best p50 ms']} ms | recall@50 {row['recall@50']} "
              f"(min {row['min recall@50']}) | index path {row['index path taken']}, {row['candidate tracks p50']} candidate "
              f"tracks (p50) | load {row['load average']}",
              flush=True)  # fmt: skip
    return figures


def graph_search_ms(index, queries: dict[str, list[np.ndarray]]) -> dict:
    """The graph search alone, as the index path asks it (a prompt's first try; a clip's mean row)."""
    out = {}
    for kind, rows in queries.items():
        times = []
        for query in rows:
            if query.shape[0] == 1:
                row, count, expansion = query, candidates.FIRST_NEIGHBOURS, 2 * candidates.FIRST_NEIGHBOURS
            else:
                mean = query.mean(axis=0, keepdims=True)
                row, count = mean / np.linalg.norm(mean), candidates.CLIP_NEIGHBOURS
                expansion = count
            start = time.perf_counter()
            index.search(row, count, expansion)
            times.append((time.perf_counter() - start) * 1000)
        if times:
            out[kind] = round(statistics.median(times), 2)
    return out


def update_time(generator: Generator, table: TrackTable, index) -> tuple[float, str]:
    """Seconds to add 100 tracks' segments (as a rescan would) to the built index."""
    counts = generator.counts(100)
    extra = make_table(generator.tracks(counts), counts, prefix="new")
    grown = make_table(np.concatenate([table.embeddings, extra.embeddings]),
                       np.concatenate([table.counts, extra.counts]), prefix="t")  # fmt: skip
    grown.hashes[-100:] = extra.hashes
    start = time.perf_counter()
    how = index._update(grown, ann.table_contents(grown), threads=0)
    return time.perf_counter() - start, str(how)


def measure_size(seed: TrackTable, segments: int, queries, cache: Path) -> dict:
    generator = Generator(seed, np.random.default_rng(0))  # the same table for a size in every run
    start = time.perf_counter()
    table = generator.table(segments // 24)
    n = int(table.counts.sum())
    print(f"\n=== {n:,} segments ({len(table.counts):,} tracks; generated in {time.perf_counter() - start:.0f} s)",
          flush=True)  # fmt: skip
    before = rss_mb()
    start = time.perf_counter()
    catalog = cache / f"{segments}.sqlite"  # only names the index's folder: ann.index_root(catalog)
    index, how = ann.SegmentIndex.open(catalog, ("bench", segments), "bench", table)
    opened = time.perf_counter() - start
    record = cache / f"{segments}-build.json"
    if how == "built":
        built = {"index build s": round(opened, 1), "built at": time.strftime("%Y-%m-%d %H:%M"),
                 "load average while building": load_average(), "cores": os.cpu_count()}  # fmt: skip
        record.write_text(json.dumps(built), encoding="utf-8")
    elif record.is_file():
        built = json.loads(record.read_text(encoding="utf-8"))
    else:
        built = {"index build s": None}
    assert index is not None
    lookup = candidates.TrackLookup(table)
    start = time.perf_counter()
    lookup.means  # noqa: B018 (computed once per catalog generation; a clip's first query pays it)
    means_s = time.perf_counter() - start
    figures: dict = {"segments": n, "tracks": len(table.counts), "index": how, **built,
                     "index opened s": round(opened, 1),
                     "matrix MB": round(table.embeddings.nbytes / 2**20),
                     "index memory MB (RSS growth)": round(rss_mb() - before),
                     "index memory MB (usearch)": round(index.index.memory_usage / 2**20),
                     "track means MB": round(lookup.means.nbytes / 2**20), "track means s": round(means_s, 2)}  # fmt: skip
    print(f"index {how} ({figures['index build s']} s to build{'' if how == 'built' else ', when built'}), "
          f"{figures['index memory MB (usearch)']} MB; track means {means_s:.1f} s", flush=True)  # fmt: skip
    figures.update(compare_paths(table, index, lookup, queries))
    figures["graph search p50 ms"] = graph_search_ms(index, queries)
    seconds, how = update_time(generator, table, index)
    figures["update +100 tracks s"] = round(seconds, 3)
    if figures["index build s"]:
        figures["update +100 tracks / build"] = round(seconds / figures["index build s"], 5)
    print(
        f"graph search alone p50: {figures['graph search p50 ms']} ms; update with 100 tracks: {seconds:.2f} s ({how})"
    )
    del table, index
    gc.collect()
    return figures


def measure_without_index(
    seed: TrackTable, segments: int, queries, cache: Path, indexed: dict | None
) -> dict:
    """A size whose graph is not built: the exact path, and the index path with exact neighbours."""
    generator = Generator(seed, np.random.default_rng(0))
    folder = Path(tempfile.mkdtemp(prefix="big-search-", dir=cache))
    try:
        start = time.perf_counter()
        table = generator.table(segments // 24, folder)
        n = int(table.counts.sum())
        print(f"\n=== {n:,} segments ({len(table.counts):,} tracks; generated in {time.perf_counter() - start:.0f} s;"
              " no graph: the index path with exact neighbours)", flush=True)  # fmt: skip
        lookup = candidates.TrackLookup(table)
        start = time.perf_counter()
        lookup.means  # noqa: B018
        figures: dict = {"segments": n, "tracks": len(table.counts), "index": "not built (graph search left out)",
                         "matrix MB": round(table.embeddings.nbytes / 2**20),
                         "track means MB": round(lookup.means.nbytes / 2**20),
                         "track means s": round(time.perf_counter() - start, 2)}  # fmt: skip
        if indexed and indexed.get("index build s"):
            scale = n / indexed["segments"]
            grow = math.log(n) / math.log(indexed["segments"])  # a graph insert costs ~log N
            figures["extrapolated from"] = f"{indexed['segments']:,} segments"
            figures["index build s (extrapolated)"] = round(indexed["index build s"] * scale * grow)
            figures["index memory MB (extrapolated)"] = round(indexed["index memory MB (usearch)"] * scale)
            figures["update +100 tracks s (extrapolated)"] = round(indexed["update +100 tracks s"] * grow, 2)
        figures.update(compare_paths(table, ExactNeighbours(table), lookup, queries, warm=True))
        del table, lookup
        gc.collect()
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    from viml.core.paths import cache_dir

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--catalog", type=Path, help="seed catalog (default: bench/search.py's set 2 catalog)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="the zero-shot bundle for the prompts (default: bench/search.py's)"
    )
    parser.add_argument(
        "--sizes", default="100000,1000000", help="segment counts with an index (default 100000,1000000)"
    )
    parser.add_argument(
        "--no-index-sizes",
        default="5000000",
        help="segment counts measured without building the graph (default 5000000; '' for none)",
    )
    parser.add_argument(
        "--libraries",
        type=int,
        nargs="?",
        const=200_000,
        default=0,
        help="first compare the ANN libraries on this many segments (default 200000)",
    )
    parser.add_argument("--clips", type=int, default=40, help="clip queries (K = 3) per size")
    parser.add_argument(
        "--index-cache", type=Path, help="where the indexes are kept (default <cache>/big_search)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()  # fmt: skip

    work = cache_dir() / "search_bench"
    cache = args.index_cache or cache_dir() / "big_search"
    cache.mkdir(parents=True, exist_ok=True)
    seed, space = seed_table(args.catalog or work / "catalog-2.sqlite")
    generator = Generator(seed, np.random.default_rng(1))  # queries and the structure sample
    rng = np.random.default_rng(2)
    sample = generator.table(200)
    figures: dict = {"seed": {"space": space, "tracks": len(seed.counts), "segments": len(seed.embeddings),
                              "dim": generator.dim, "consecutive-segment correlation": round(generator.rho, 3)},
                     "structure": {"real": structure(seed, rng), "synthetic": structure(sample, rng)},
                     "cores": os.cpu_count(), "BLAS threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                     "load average at start": load_average()}  # fmt: skip
    print(json.dumps(figures, indent=1))
    prompts = prompt_queries(generator.dim, args.bundle or work / "bundles" / "zero-shot")
    clips = clip_queries(generator, args.clips)
    queries = {"prompt (K=1)": prompts, "clip (K=3)": clips}
    print(f"queries: {len(prompts)} prompts (real text embeddings), {len(clips)} clips")
    if args.libraries:
        print(f"\n=== ANN libraries on {args.libraries:,} segments (recall of the 200 nearest segments)")
        figures["libraries"] = compare_libraries(generator, args.libraries, (prompts or clips)[:40])
    largest = None

    def write() -> None:
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")

    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        figures[f"{size} segments"] = largest = measure_size(seed, size, queries, cache)
        write()
    for size in [int(s) for s in args.no_index_sizes.split(",") if s.strip()]:
        figures[f"{size} segments"] = measure_without_index(seed, size, queries, cache, largest)
        write()
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
