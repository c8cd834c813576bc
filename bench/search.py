"""Search on real music: words, sound and their fusion, on two labelled sets, with speed.

    python bench/search.py [--bundle NAME|FOLDER] [--sets 1,2] [--json out.json]

1. Fetches the labelled sets (bench/zero_shot_set.json: 78 tracks, 42 prompts; bench/search_set_2.json: 100
   tracks, 43 prompts; Debian game-music packages, `apt-get download` + `dpkg -x` into <cache>/realmusic,
   never committed), cuts an excerpt of each track and writes it as a library a user could have: FLAC at
   its original place in its package with its original text tags; set 1 also "stripped" (neutral names,
   no tags: what is left without words).
2. Scans each library with the musicnn music model into its own catalog and embeds it in a zero-shot
   bundle's space (built into <cache>/search_bench/bundles when no --bundle is given).
3. Ranks every prompt through `viml.search.Searcher` in every way, all in this run: chance, a keyword
   count over file names and tags, zero-shot sound (the search before words), words alone (BM25), words by
   meaning, pooling variants, and the fused search. The fusion weights are chosen on one set and reported
   on the other (never tuned and reported on the same prompts); the defaults are the ones chosen on set 2.
4. Speed: text embedding, ranking over 100,000 segments, and a fused prompt query over 100,000 segments
   (5,000 tracks with words) after the first query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from viml.engine.runtime import RuntimeBundle

sys.path.insert(0, str(Path(__file__).parent))
from zero_shot_data import fetch_packages, keyword_documents, load_set, make_excerpts, make_library  # noqa: E402

KS = (1, 5, 10)
CHANCE_DRAWS = 2000
TIE_DRAWS = 200
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "for",
        "and",
        "or",
        "with",
        "without",
        "no",
        "not",
        "to",
        "in",
        "on",
        "at",
        "by",
        "from",
        "music",
        "piece",
        "song",
        "track",
        "sound",
        "sounds",
        "played",
        "that",
        "this",
        "is",
        "it",
        "its",
    ]
)


SETS = {
    "1": Path(__file__).with_name("zero_shot_set.json"),
    "2": Path(__file__).with_name("search_set_2.json"),
}
KEYWORD = "keyword (file names + file tags)"
ZERO_SHOT = "zero-shot: sound + prompt terms (before words)"
FUSED = "fused (weights chosen on the other set)"
DEFAULT = "fused, SuggestRequest defaults"
# What is searched per row: SuggestRequest fields (the prompt and top are added per prompt).
METHODS: dict[str, dict] = {
    "zero-shot, prompt embedded as typed": {"prompt_terms": False, "words_weight": 0, "meaning_weight": 0},
    ZERO_SHOT: {"words_weight": 0, "meaning_weight": 0},
    "zero-shot without the measured sound concepts": {"words_weight": 0, "meaning_weight": 0, "descriptors": False},
    "tag terms only (mentions weight 1, no embedding)": {
        "embed_prompt": False, "mention_weight": 1.0, "words_weight": 0, "meaning_weight": 0},
    "sound, pooling mean": {"words_weight": 0, "meaning_weight": 0, "pooling": "mean"},
    "sound, pooling top3": {"words_weight": 0, "meaning_weight": 0, "pooling": "top3"},
    "sound, pooling best+mean": {"words_weight": 0, "meaning_weight": 0, "pooling": "best+mean"},
    "words only (BM25)": {"sound_weight": 0, "meaning_weight": 0},
    "words by meaning (text embedding)": {"sound_weight": 0, "words_weight": 0},
    DEFAULT: {},
    # Finer windows (search/offsets.py) move the best tracks' starts to downbeats and may lift their
    # score; these rows rank as before them (segment-grid windows only).
    "fused, segment-grid windows only": {"fine_offsets": False},
    "zero-shot sound, segment-grid windows only": {"words_weight": 0, "meaning_weight": 0, "fine_offsets": False},
}  # fmt: skip
GRID = [
    {"words_weight": w, "meaning_weight": m, "meaning_floor": floor, "pooling": pool}
    for w in (0.5, 1.0, 2.0, 4.0) for m in (0.0, 0.5, 1.0, 2.0) for floor in (0.2, 0.3, 0.4)
    for pool in ("best", "best+mean")
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", help="zero-shot bundle name or folder (default: build one in the cache)")
    parser.add_argument(
        "--sets", default="1,2", help="labelled sets to run (default 1,2; weights cross only with both)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="scan worker processes (default 1)")
    parser.add_argument("--segments", type=int, default=100_000, help="segments for the speed test")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from viml.core.paths import cache_dir

    root = cache_dir() / "realmusic"
    work = cache_dir() / "search_bench"
    runtime = bench_bundle(args.bundle, work)
    print(f"bundle: {runtime.name} ({runtime.kind}), prompts through {runtime.prompt_role}")
    sets = {}
    for name in [n.strip() for n in args.sets.split(",") if n.strip()]:
        sets[name] = prepare_set(name, root, work, runtime, args.jobs)
    # Weights: chosen on one set, reported on the other (with one set, on itself, and said so).
    chosen = {}
    for name in sets:
        other = next((o for o in sets if o != name), name)
        chosen[name] = choose_weights(sets[other], runtime)
        tuned_on = f"set {other}" if other != name else "the same set (only one set was run)"
        print(f"set {name}: fusion weights chosen on {tuned_on}: {chosen[name]}")
    figures: dict = {
        "bundle": {"name": runtime.name, "kind": runtime.kind, "text encoder": runtime.prompt_role}
    }
    for name, data in sets.items():
        print(f"\n=== set {name}: {data['description']}")
        figures[f"set {name}"] = report_set(data, chosen[name], runtime)
        if data.get("stripped") is not None:
            figures[f"set {name}"]["stripped library"] = report_stripped(data, chosen[name], runtime)
        figures[f"set {name}"]["fusion weights (chosen on the other set)"] = chosen[name]
    figures["speed"] = measure_speed(runtime, [p["prompt"] for d in sets.values() for p in d["prompts"]],
                                     args.segments)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def bench_bundle(name: str | None, work: Path) -> RuntimeBundle:
    from viml.engine.runtime import open_bundle

    if name is None:
        folder = work / "bundles" / "zero-shot"
        if not (folder / "manifest.json").is_file():
            from viml.export_onnx.build import build_bundle

            print("building a zero-shot bundle (MiniLM + musicnn) in the cache", file=sys.stderr)
            build_bundle("zero-shot", kind="zero-shot", output_dir=work / "bundles", force=True)
        name = str(folder)
    runtime = open_bundle(name)
    if runtime.kind != "zero-shot":
        print(f"note: bundle {runtime.name!r} is {runtime.kind}, not zero-shot")
    return runtime


# --- the sets -------------------------------------------------------------------------------------------


def prepare_set(name: str, root: Path, work: Path, runtime: RuntimeBundle, jobs: int) -> dict:
    """Fetch, excerpt, write the library (and set 1's stripped one), scan; what evaluating it needs."""
    labelled = load_set(SETS[name])
    folders = fetch_packages(labelled, root)
    excerpts, undecodable = make_excerpts(
        labelled, folders, root / ("excerpts" if name == "1" else f"excerpts-{name}")
    )
    for track_id, why in undecodable.items():
        print(f"note: set {name}: {track_id} left out, our decoder cannot read it: {why}")
    library = make_library(labelled, folders, excerpts, root / f"library-{name}")
    prompts = [p for p in labelled["prompts"] if any(t in excerpts for t in p["relevant"])]
    data = {
        "name": name,
        "description": f"{len(excerpts)} tracks, {len(prompts)} prompts",
        "labelled": labelled,
        "prompts": prompts,
        "documents": keyword_documents(labelled, folders),
        "undecodable": undecodable,
        "library": scan_library(library, work / f"catalog-{name}.sqlite", runtime, jobs),
        "stripped": None,
    }
    if name == "1":
        stripped = make_library(labelled, folders, excerpts, root / f"library-{name}-stripped", stripped=True)
        data["stripped"] = scan_library(stripped, work / f"catalog-{name}-stripped.sqlite", runtime, jobs)
    return data


def scan_library(library: dict[str, Path], catalog_path: Path, runtime: RuntimeBundle, jobs: int) -> dict:
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog, path_key

    folder = Path(os.path.commonpath([str(p) for p in library.values()]))
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    with Catalog(catalog_path) as catalog:
        started = time.perf_counter()
        summary = scan(catalog, folder, jobs=jobs, progress=False, bundle=runtime.folder)
        seconds = time.perf_counter() - started
    print(f"scan {folder}: {summary.analysed} analysed, {summary.unchanged} unchanged in {seconds:.1f} s")
    return {"catalog": catalog_path, "by_path": {path_key(os.path.abspath(p)): t for t, p in library.items()},
            "scan seconds": round(seconds, 1)}  # fmt: skip


# --- ranking --------------------------------------------------------------------------------------------


def first_ranks(data: dict, library: dict, runtime: RuntimeBundle, options: dict) -> list[float]:
    """First-relevant rank of each prompt of the set, searched with SuggestRequest(**options)."""
    from viml.catalog.store import Catalog
    from viml.core.errors import UserFacingError
    from viml.search import Searcher, SuggestRequest

    ranks = []
    by_path = library["by_path"]
    with Catalog(library["catalog"], must_exist=True) as catalog:
        searcher = Searcher(catalog, runtime)
        for prompt in data["prompts"]:
            relevant = set(prompt["relevant"])
            try:
                request = SuggestRequest(prompt=prompt["prompt"], influence=1.0, top=len(by_path), **options)
                ranked = [by_path.get(s.path) for s in searcher.suggest(request).suggestions]
            except UserFacingError:  # nothing to search for: a random order
                ranked = list(
                    np.random.default_rng(len(prompt["prompt"])).permutation(sorted(by_path.values()))
                )
            ranks.append(float(next((i for i, t in enumerate(ranked, 1) if t in relevant), len(ranked))))
    return ranks


def choose_weights(data: dict, runtime: RuntimeBundle) -> dict:
    """The grid point with the best mean of R@1 and R@10 on this set (ties: the first, i.e. the smallest
    weights)."""
    best, best_value = GRID[0], -1.0
    for options in GRID:
        ranks = np.array(first_ranks(data, data["library"], runtime, options))
        value = float(np.mean(ranks <= 1) + np.mean(ranks <= 10)) / 2
        if value > best_value + 1e-9:
            best, best_value = options, value
    return dict(best)


def report_set(data: dict, weights: dict, runtime: RuntimeBundle) -> dict:
    prompts, library = data["prompts"], data["library"]
    tracks = sorted(set(library["by_path"].values()))
    rng = np.random.default_rng(0)
    rows: dict[str, list[list[float]]] = {"chance": [], KEYWORD: []}
    for prompt in prompts:
        relevant = {t for t in prompt["relevant"] if t in tracks}
        rows["chance"].append(chance_ranks(len(tracks), len(relevant), rng))
        scores = keyword_scores(prompt["prompt"], tracks, data["documents"])
        rows[KEYWORD].append(tie_broken_ranks(scores, tracks, relevant, rng))
    for name, options in {**METHODS, FUSED: weights}.items():
        rows[name] = [[r] for r in first_ranks(data, library, runtime, options)]
    return summarise_rows(rows, prompts, len(tracks), library["scan seconds"])


def report_stripped(data: dict, weights: dict, runtime: RuntimeBundle) -> dict:
    """The same audio without words: fused must be at least as good as zero-shot."""
    rows = {
        ZERO_SHOT: [[r] for r in first_ranks(data, data["stripped"], runtime, METHODS[ZERO_SHOT])],
        FUSED: [[r] for r in first_ranks(data, data["stripped"], runtime, weights)],
    }
    print("  stripped library (neutral file names, no tags):")
    return summarise_rows(
        rows, data["prompts"], len(data["stripped"]["by_path"]), data["stripped"]["scan seconds"]
    )


def summarise_rows(rows: dict, prompts: list[dict], tracks: int, scan_seconds: float) -> dict:
    kinds = sorted({p["kind"] for p in prompts})
    table = {name: summarise(ranks) for name, ranks in rows.items()}
    by_kind = {
        kind: {name: summarise([r for r, p in zip(ranks, prompts, strict=True) if p["kind"] == kind])
               for name, ranks in rows.items()}
        for kind in kinds
    }  # fmt: skip
    print_quality(table, by_kind, len(prompts), tracks)
    return {
        "prompts evaluated": len(prompts),
        "tracks": tracks,
        "scan seconds": scan_seconds,
        "metric": "Recall@K = share of prompts with a relevant track in the top K; median rank of the first "
        "relevant track (chance and keyword ties: averaged over random orders)",
        "results": table,
        "results by prompt kind": by_kind,
    }


def chance_ranks(total: int, relevant: int, rng: np.random.Generator) -> list[float]:
    """First-relevant ranks of random orders."""
    draws = np.argsort(rng.random((CHANCE_DRAWS, total)), axis=1)  # positions of items 0..total-1
    return list((draws[:, :relevant].min(axis=1) + 1).astype(float))


def keyword_scores(prompt: str, tracks: list[str], documents: dict[str, str]) -> np.ndarray:
    words = {_stem(w) for w in re.findall(r"[a-z0-9']+", prompt.lower()) if w not in STOPWORDS and len(w) > 2}
    scores = []
    for track in tracks:
        tokens = {_stem(w) for w in re.findall(r"[a-z0-9']+", documents[track].lower().replace("_", " "))}
        scores.append(len(words & tokens))
    return np.array(scores, float)


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def tie_broken_ranks(
    scores: np.ndarray, tracks: list[str], relevant: set[str], rng: np.random.Generator
) -> list[float]:
    ranks = []
    is_relevant = np.array([t in relevant for t in tracks])
    for _ in range(TIE_DRAWS):
        order = np.lexsort((rng.random(len(tracks)), -scores))
        ranks.append(float(np.flatnonzero(is_relevant[order])[0] + 1))
    return ranks


def summarise(ranks: list[list[float]]) -> dict:
    """Recall@K and median first-relevant rank; a prompt with several draws counts by its draws' mean."""
    if not ranks:
        return {}
    out = {f"recall@{k}": round(float(np.mean([np.mean(np.array(r) <= k) for r in ranks])), 3) for k in KS}
    out["median rank"] = float(np.median([np.median(r) for r in ranks]))
    return out


def print_quality(rows: dict, by_kind: dict, prompts: int, tracks: int) -> None:
    print(f"\nquality: {prompts} prompts over {tracks} real tracks (first relevant track)")
    print(f"{'method':62} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'med.rank':>9}")
    for name, row in rows.items():
        print(
            f"{name:62} {row['recall@1']:6.3f} {row['recall@5']:6.3f} {row['recall@10']:6.3f} {row['median rank']:9.1f}"
        )
    for base in ("chance", KEYWORD, ZERO_SHOT):
        if base in rows and FUSED in rows and base != FUSED:
            fused, other = rows[FUSED], rows[base]
            print(f"fused vs {base}: R@10 x{_ratio(fused['recall@10'], other['recall@10'])}, "
                  f"R@1 x{_ratio(fused['recall@1'], other['recall@1'])}")  # fmt: skip
    for kind, kind_rows in by_kind.items():
        print(f"  {kind} prompts:")
        for name, row in kind_rows.items():
            if row:
                print(
                    f"    {name:60} R@1 {row['recall@1']:.3f}  R@10 {row['recall@10']:.3f}  med {row['median rank']:.1f}"
                )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "inf"


# --- speed --------------------------------------------------------------------------------------------


def measure_speed(runtime: RuntimeBundle, prompts: list[str], segments: int) -> dict:
    from viml.engine.vectors import normalize_rows
    from viml.search.prompt_terms import parse_prompt
    from viml.search.ranking import top_tracks, window_scores

    encoder = runtime.prompt_encoder
    encoder.encode_texts(["warm up"])
    onnx_ms = []
    for prompt in prompts:
        started = time.perf_counter()
        encoder.encode_texts([prompt])
        onnx_ms.append((time.perf_counter() - started) * 1000)
    torch_ms = torch_minilm_ms(prompts)

    rng = np.random.default_rng(1)
    dim = int(encoder.embed_dim)
    per_track = 10
    counts = np.full(segments // per_track, per_track, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    embeddings = normalize_rows(rng.standard_normal((int(counts.sum()), dim)).astype(np.float32))
    vocabularies = runtime.manifest.get("tag_vocabularies") or {"MTT": ["drums", "piano", "vocals", "sad"]}
    tag_names = [f"{vocabulary}:{tag}" for vocabulary, names in vocabularies.items() for tag in names]
    tags = rng.random((len(embeddings), len(tag_names)), dtype=np.float32)
    query = normalize_rows(encoder.encode_texts(["calm piano"]))
    terms = parse_prompt("calm piano^2, not sad, no vocals -drums")

    def ranked(with_terms: bool) -> None:
        bias = terms.segment_bias(tags, tag_names) if with_terms else None
        scores = window_scores(embeddings, starts, counts, query, bias)
        top_tracks(scores.best, None, 50)

    def brute() -> None:
        similarities = embeddings @ query[0]
        np.argpartition(-similarities, 50)[:50]

    timings = {}
    for name, run in (("search + terms", lambda: ranked(True)), ("search", lambda: ranked(False)),
                      ("numpy matmul + top 50 (baseline)", brute)):  # fmt: skip
        run()
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000)
        timings[name] = round(statistics.median(samples), 2)
    fused = measure_fused_query(runtime, prompts, segments)
    result = {
        "fused prompt query": fused,
        "text embedding ms (MiniLM ONNX, median per prompt)": round(statistics.median(onnx_ms), 2),
        "text embedding ms (sentence-transformers torch 1 thread, median)": torch_ms,
        "text embedding target ms": 20,
        "segments": int(len(embeddings)),
        "tracks": int(len(counts)),
        "dimensions": dim,
        "tag columns": len(tag_names),
        "prompt-only ranking ms (median of 15)": timings,
        "ranking target ms": 50,
    }
    print_speed(result)
    return result


WORDS = ("battle", "calm", "night", "forest", "theme", "boss", "menu", "rain", "dark", "victory", "ocean",
         "space", "chase", "dream", "castle", "festival", "winter", "desert", "city", "storm")  # fmt: skip


def measure_fused_query(
    runtime: RuntimeBundle, prompts: list[str], segments: int, per_track: int = 20
) -> dict:
    """The whole fused search (sound + prompt terms + measured concepts + BM25 + meaning) over a synthetic
    catalog of `segments` segments with words, written through the store like a scan; the first query
    pays for embedding every track's words once, the next ones are what a user waits for."""
    from viml.catalog.store import Catalog, FileTags, Fingerprint
    from viml.engine.music.types import MusicSegments
    from viml.engine.vectors import normalize_rows
    from viml.search import Searcher, SuggestRequest
    from viml.search.spaces import retrieval_space

    rng = np.random.default_rng(3)
    tracks = segments // per_track
    vocabularies = runtime.analysis.tag_vocabularies or {"MTT": ["piano", "drums", "vocals"]}
    space = retrieval_space(runtime)
    dim = int(runtime.prompt_encoder.embed_dim)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "catalog.sqlite"
        started = time.perf_counter()
        with Catalog(path) as catalog:
            run = catalog.start_run("/bench", runtime.analysis.analysis_id)
            for t in range(tracks):
                starts = np.arange(per_track) * 10.0
                music = MusicSegments(
                    starts, starts + 10.0, rng.standard_normal((per_track, 400)).astype(np.float32),
                    {v: rng.random((per_track, len(n)), dtype=np.float32) for v, n in vocabularies.items()},
                    vocabularies,
                    descriptors={"loudness": rng.uniform(-40, -8, per_track).astype(np.float32),
                                 "brightness": rng.uniform(300, 4000, per_track).astype(np.float32),
                                 "onset_rate": rng.uniform(0, 6, per_track).astype(np.float32)},
                )  # fmt: skip
                title = " ".join(rng.choice(WORDS, 2, replace=False))
                genre = str(rng.choice(["ambient", "rock", "orchestral", "electronic", "jazz"]))
                tags = FileTags(title=title, genre=genre, words={"title": (title,), "genre": (genre,)})
                fp = Fingerprint(f"/bench/album{t // 100:03d}/{title.replace(' ', '_')}_{t:05d}.ogg", 1, 1,
                                 f"{t:040x}", "ogg", per_track * 10.0, tags)  # fmt: skip
                catalog.write_analysis(fp, runtime.analysis.analysis_id, music, run)
                catalog.write_retrieval(
                    space.id, fp.hash, normalize_rows(rng.standard_normal((per_track, dim)))
                )
        build_seconds = time.perf_counter() - started
        with Catalog(path) as catalog:
            searcher = Searcher(catalog, runtime)
            started = time.perf_counter()
            searcher.suggest(SuggestRequest(prompt="warm up the words", top=10))
            first = time.perf_counter() - started
            samples = []
            for prompt in prompts[:20]:
                started = time.perf_counter()
                searcher.suggest(SuggestRequest(prompt=prompt, top=10))
                samples.append((time.perf_counter() - started) * 1000)
            # One file changed: its rescan rewrites its analysis and words in one transaction, and the next
            # query re-reads what the write invalidated (the matrix, the words' texts; one new embedding).
            retitled = FileTags(
                title="storm chase", genre="rock", words={"title": ("storm chase",), "genre": ("rock",)}
            )
            changed = Fingerprint(
                "/bench/album000/storm_chase_00000.ogg", 2, 2, f"{0:040x}", "ogg", per_track * 10.0, retitled
            )
            started = time.perf_counter()
            catalog.write_analysis(changed, runtime.analysis.analysis_id, music, run)
            reindex_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            found = searcher.suggest(SuggestRequest(prompt="storm chase", top=10)).suggestions
            after_change = time.perf_counter() - started
    words_build = _words_index_build(10_000)
    result = {
        "tracks": tracks,
        "segments": tracks * per_track,
        "catalog build seconds": round(build_seconds, 1),
        "first query seconds (embeds every track's words once)": round(first, 2),
        "next queries ms (median of 20 new prompts)": round(statistics.median(samples), 1),
        "next queries ms (slowest)": round(max(samples), 1),
        "target ms": 50,
        "re-index one changed file ms (its analysis and words, one transaction)": round(reindex_ms, 1),
        "first query after that change seconds": round(after_change, 2),
        "changed file found by its new words": any(
            s.path.endswith("storm_chase_00000.ogg") for s in found[:3]
        ),
        "words index build, 10,000 tracks, one transaction, seconds": round(words_build, 2),
    }
    print(f"one changed file: re-indexed in {reindex_ms:.1f} ms, next query {after_change:.2f} s; words index of "
          f"10,000 tracks built in {words_build:.2f} s")  # fmt: skip
    print(f"fused prompt query over {result['segments']:,} segments ({tracks:,} tracks with words): first "
          f"{first:.1f} s, then {result['next queries ms (median of 20 new prompts)']} ms median "
          f"(target 50 ms)")  # fmt: skip
    return result


def _words_index_build(count: int) -> float:
    """Seconds to index `count` library-like tracks' words (bench/catalog_words.py has the details)."""
    from catalog_words import library
    from viml.catalog.store import Catalog

    tracks = library(count)
    with tempfile.TemporaryDirectory() as scratch, Catalog(Path(scratch) / "words.sqlite") as catalog:
        started = time.perf_counter()
        with catalog.transaction() as c:
            for path, tags in tracks:
                catalog._write_words(c, path, tags)
        return time.perf_counter() - started


def torch_minilm_ms(prompts: list[str]) -> float | None:
    try:
        from sentence_transformers import SentenceTransformer
        from viml.training.encoders.text import minilm_model_dir
    except ImportError:
        return None
    import torch

    # One thread: on this shared 2-core machine torch's default (2 threads) measured 30-60x slower.
    torch.set_num_threads(1)
    model = SentenceTransformer(str(minilm_model_dir()), device="cpu")
    model.encode(["warm up"])
    samples = []
    for prompt in prompts:
        started = time.perf_counter()
        model.encode([prompt], show_progress_bar=False)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def print_speed(result: dict) -> None:
    onnx = result["text embedding ms (MiniLM ONNX, median per prompt)"]
    torch_ms = result["text embedding ms (sentence-transformers torch 1 thread, median)"]
    print(f"\nspeed (CPU, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    line = f"text embedding: {onnx:.1f} ms (target 20 ms: {onnx / 20:.2f} of it)"
    if torch_ms:
        line += f"; torch {torch_ms:.1f} ms ({torch_ms / onnx:.2f}x slower)"
    print(line)
    timings = result["prompt-only ranking ms (median of 15)"]
    base = timings["numpy matmul + top 50 (baseline)"]
    for name, ms in timings.items():
        ratio = "" if math.isclose(ms, base) else f", {ms / base:.2f}x the baseline"
        print(f"ranking {result['segments']:,} segments x {result['dimensions']}, {name}: {ms:.1f} ms "
              f"(target 50 ms: {ms / 50:.2f} of it{ratio})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
