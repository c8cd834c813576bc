"""Zero-shot search on real music: Recall@1/5/10 and median rank vs chance and a keyword baseline, and speed.

    python bench/zero_shot.py [--bundle NAME|FOLDER] [--fresh] [--json out.json]

1. Fetches the labelled set of bench/zero_shot_set.json (Debian game-music packages, `apt-get download` +
   `dpkg -x` into <cache>/realmusic, never committed) and cuts a 60 s excerpt of each track.
2. Scans the excerpts with the musicnn music model into a catalog (<cache>/zero_shot_bench/catalog.sqlite,
   incremental; `--fresh` uses a temporary one) and embeds it in a zero-shot bundle's space (built into
   <cache>/zero_shot_bench/bundles when no --bundle is given; building needs the train extra).
3. Runs every prompt through `viml.search.Searcher` (the CLI's search) in several ways, all in this run:
   chance (random orders), keyword (prompt words matched against file paths and file tags), the prompt
   embedded as typed, the prompt with its terms (search/prompt_terms.py: the product's default), with
   plain mentions also boosted, and tag terms alone.
4. Speed: text embedding per prompt (MiniLM ONNX vs sentence-transformers torch, target < 20 ms) and
   prompt-only ranking over 100,000 segments after the text is embedded (target < 50 ms).
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
from zero_shot_data import fetch_packages, keyword_documents, load_set, make_excerpts  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", help="zero-shot bundle name or folder (default: build one in the cache)")
    parser.add_argument("--catalog", type=Path, help="catalog to scan into (default: in the cache)")
    parser.add_argument("--fresh", action="store_true", help="scan into a temporary catalog")
    parser.add_argument("--jobs", type=int, default=1, help="scan worker processes (default 1)")
    parser.add_argument("--mention-weight", type=float, default=0.5, help="for the 'mentions boosted' row")
    parser.add_argument("--segments", type=int, default=100_000, help="segments for the speed test")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from viml.core.paths import cache_dir

    labelled = load_set()
    root = cache_dir() / "realmusic"
    work = cache_dir() / "zero_shot_bench"
    folders = fetch_packages(labelled, root)
    excerpts, undecodable = make_excerpts(labelled, folders, root / "excerpts")
    for track_id, why in undecodable.items():
        print(f"note: {track_id} left out, our decoder cannot read it: {why}")
    runtime = bench_bundle(args.bundle, work)
    print(f"bundle: {runtime.name} ({runtime.kind}), prompts through {runtime.prompt_role}")

    with tempfile.TemporaryDirectory() as temporary:
        catalog_path = (
            Path(temporary) / "catalog.sqlite" if args.fresh else (args.catalog or work / "catalog.sqlite")
        )
        quality = evaluate(labelled, folders, excerpts, runtime, catalog_path, args)
    speed = measure_speed(runtime, [p["prompt"] for p in labelled["prompts"]], args.segments)
    figures = {
        "bundle": {"name": runtime.name, "kind": runtime.kind, "text encoder": runtime.prompt_role},
        "tracks decoded": len(excerpts),
        "tracks left out (undecodable)": undecodable,
        "excerpt seconds": labelled["excerpt_seconds"],
        **quality,
        "speed": speed,
        "licences": {
            p: {"version": m["version"], "licence": m["licence"], "holder": m["holder"]}
            for p, m in labelled["packages"].items()
        },  # fmt: skip
    }
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


# --- quality ------------------------------------------------------------------------------------------


def evaluate(
    labelled: dict,
    folders: dict[str, Path],
    excerpts: dict[str, Path],
    runtime: RuntimeBundle,
    catalog_path: Path,
    args: argparse.Namespace,
) -> dict:
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog, path_key
    from viml.core.errors import UserFacingError
    from viml.search import Searcher, SuggestRequest

    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    with Catalog(catalog_path) as catalog:
        started = time.perf_counter()
        summary = scan(catalog, Path(excerpts[next(iter(excerpts))]).parent, jobs=args.jobs, progress=False)
        scan_seconds = time.perf_counter() - started
        print(f"scan: {summary.analysed} analysed, {summary.unchanged} unchanged in {scan_seconds:.1f} s")
        searcher = Searcher(catalog, runtime)
        searcher.prepare()
        table = catalog.load_tracks(searcher.space.id)
        by_path = {path_key(os.path.abspath(p)): t for t, p in excerpts.items()}
        order = [by_path.get(p) for p in table.paths]
        tracks = [t for t in order if t is not None]
        documents = keyword_documents(labelled, folders)

        def rank_with(prompt: str, mode: str) -> list[str]:
            weight = {"typed": 0.0, "terms": 0.0, "mentions": args.mention_weight, "tags only": 1.0}[mode]
            request = SuggestRequest(
                prompt=prompt, influence=1.0, top=len(table.paths), mention_weight=weight,
                prompt_terms=mode != "typed", embed_prompt=mode != "tags only",
            )  # fmt: skip
            try:
                results = searcher.suggest(request).suggestions
            except UserFacingError:  # no concept of the table and nothing to embed: a random order
                return list(np.random.default_rng(len(prompt)).permutation(tracks))
            ranked = [by_path.get(r.path) for r in results]
            return [t for t in ranked if t is not None]

        prompts = [p for p in labelled["prompts"] if any(t in excerpts for t in p["relevant"])]
        skipped = [p["prompt"] for p in labelled["prompts"] if p not in prompts]
        for prompt in skipped:
            print(f"note: prompt {prompt!r} skipped: none of its tracks could be decoded")
        methods = {
            "zero-shot, prompt embedded as typed": "typed",
            "zero-shot + prompt terms (default)": "terms",
            f"zero-shot + terms + mentions boosted ({args.mention_weight:g})": "mentions",
            "tag terms only (mentions weight 1, no embedding)": "tags only",
        }
        first_ranks: dict[str, list[list[float]]] = {"chance": [], "keyword (file names + file tags)": []}
        first_ranks.update({name: [] for name in methods})
        rng = np.random.default_rng(0)
        for prompt in prompts:
            relevant = {t for t in prompt["relevant"] if t in excerpts}
            first_ranks["chance"].append(chance_ranks(len(tracks), len(relevant), rng))
            scores = keyword_scores(prompt["prompt"], tracks, documents)
            first_ranks["keyword (file names + file tags)"].append(
                tie_broken_ranks(scores, tracks, relevant, rng)
            )
            for name, mode in methods.items():
                ranked = rank_with(prompt["prompt"], mode)
                first_ranks[name].append([float(ranked.index(next(t for t in ranked if t in relevant)) + 1)])
    kinds = sorted({p["kind"] for p in prompts})
    table_rows = {name: summarise(ranks) for name, ranks in first_ranks.items()}
    by_kind = {
        kind: {
            name: summarise([r for r, p in zip(ranks, prompts, strict=True) if p["kind"] == kind])
            for name, ranks in first_ranks.items()
        }
        for kind in kinds
    }
    per_prompt = [
        {"prompt": p["prompt"], "kind": p["kind"], "relevant": len([t for t in p["relevant"] if t in excerpts]),
         **{name: float(np.mean(first_ranks[name][i])) for name in first_ranks if name != "chance"}}
        for i, p in enumerate(prompts)
    ]  # fmt: skip
    print_quality(table_rows, by_kind, len(prompts), len(tracks))
    return {
        "prompts evaluated": len(prompts),
        "prompts skipped": skipped,
        "tracks in catalog": len(tracks),
        "scan seconds": round(scan_seconds, 1),
        "metric": "Recall@K = share of prompts with a relevant track in the top K; median rank of the first "
        "relevant track (chance and keyword ties: averaged over random orders)",
        "results": table_rows,
        "results by prompt kind": by_kind,
        "first relevant rank per prompt": per_prompt,
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
    chance = rows["chance"]
    keyword = rows["keyword (file names + file tags)"]
    for name, row in rows.items():
        print(
            f"{name:62} {row['recall@1']:6.3f} {row['recall@5']:6.3f} {row['recall@10']:6.3f} {row['median rank']:9.1f}"
        )
    default = rows["zero-shot + prompt terms (default)"]
    print(
        f"default vs chance: R@10 x{_ratio(default['recall@10'], chance['recall@10'])}, "
        f"vs keyword: R@10 x{_ratio(default['recall@10'], keyword['recall@10'])}, "
        f"R@1 x{_ratio(default['recall@1'], keyword['recall@1'])}"
    )
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
    result = {
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
