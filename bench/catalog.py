"""Catalog benchmark: scan throughput, rescan of unchanged files, ranking latency with best offsets.

    python bench/catalog.py [--json PATH] [--scan-files 8] [--rescan-files 10000] [--segments 100000]
                            [--only scan rescan ranking loading]

Every figure is measured in this run, and each is printed next to its baseline from the same run:
- scan: audio seconds catalogued per wall second (decode included), with 1 worker and with all cores;
  uses the real music model when it is converted (`viml convert-musicnn`), else says so and uses the
  audio-statistics analyzer (decode + FFT only); then again with the rhythm analysis (beats, sections,
  loudness; when BeatNet is converted): what it adds to the scan's wall and CPU time.
- rescan: a catalogued folder of N unchanged files scanned again (target < 2 s for 10,000).
- ranking: a query over S segments × 512 (float32) with the best offset of every track, for a prompt
  (K = 1) and a 30 s clip (K = 3), against numpy brute force (one matmul + top-50, no offsets).
- loading: getting that segment matrix for a query, from SQLite vs the matrix cache, a whole `suggest()`
  in process, and `viml suggest --prompt` end to end when a default bundle is installed.
The 1-minute load average before/after each section is printed and saved (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from viml.catalog.analysis import fingerprint, usable_cores
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, Fingerprint
from viml.engine.music.types import MusicSegments
from viml.engine.vectors import normalize_rows
from viml.search.ranking import top_tracks, window_scores


def write_music(folder: Path, count: int, seconds: float, rate: int = 44100) -> float:
    """Stereo 44.1 kHz WAV files (what a music folder decodes to), different tones and noise."""
    rng = np.random.default_rng(0)
    for i in range(count):
        t = np.arange(int(rate * seconds)) / rate
        mono = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 2000) * t) + 0.05 * rng.standard_normal(len(t))
        stereo = np.repeat((np.clip(mono, -1, 1) * 32767).astype("<i2")[:, None], 2, axis=1)
        with wave.open(str(folder / f"track{i:04d}.wav"), "wb") as handle:
            handle.setnchannels(2)
            handle.setsampwidth(2)
            handle.setframerate(rate)
            handle.writeframes(stereo.tobytes())
    return count * seconds


def bench_scan(work: Path, files: int, seconds: float) -> dict:
    folder = work / "scan_music"
    folder.mkdir()
    audio = write_music(folder, files, seconds)
    analyzer = "viml.catalog.analysis:load_music_model"
    try:
        from viml.catalog.analysis import load_analyzer

        load_analyzer(analyzer)
        model = "musicnn (MTT + MSD, onnxruntime)"
    except Exception as error:  # the benchmark still measures scan mechanics without the model
        print(f"  music model unavailable ({error}); using the audio-statistics analyzer")
        analyzer, model = "viml.demo.stats_analyzer:load", "audio statistics (no music model)"
    results = {"analyzer": model, "files": files, "audio_seconds": audio}
    cores = usable_cores()
    from viml.catalog.analysis import RHYTHM_ENV, expected_rhythm_id

    # The rhythm analysis (BeatNet + tracker + sections + loudness) rides on the same decode: the scan
    # is measured without it (the baseline) and with it, when BeatNet is converted.
    with_rhythm = analyzer.endswith("load_music_model") and expected_rhythm_id() is not None
    modes = ("without_rhythm", "with_rhythm") if with_rhythm else ("without_rhythm",)
    if not with_rhythm:
        print("  BeatNet not converted (`viml convert-beatnet`): the scan is measured without the rhythm")
    for mode in modes:
        os.environ[RHYTHM_ENV] = "1" if mode == "with_rhythm" else "0"
        for jobs in sorted({1, cores}):
            with Catalog(work / f"scan_{mode}_{jobs}.sqlite") as catalog:
                cpu_before = cpu_seconds()
                started = time.perf_counter()
                summary = scan(catalog, folder, analyzer, jobs=jobs, progress=False)
                wall = time.perf_counter() - started
                cpu = cpu_seconds() - cpu_before
            assert summary.analysed == files, summary.as_dict()
            suffix = f"{jobs}_workers" + ("" if mode == "without_rhythm" else "_with_rhythm")
            results[f"realtime_multiple_{suffix}"] = audio / wall
            results[f"seconds_{suffix}"] = wall
            # CPU seconds of this process and its (finished) workers: what a shared machine cannot inflate.
            results[f"audio_seconds_per_cpu_second_{suffix}"] = audio / cpu
            results[f"cpu_seconds_{suffix}"] = cpu
    os.environ.pop(RHYTHM_ENV, None)
    results["core_scaling"] = (
        results[f"realtime_multiple_{cores}_workers"] / results["realtime_multiple_1_workers"]
    )
    if with_rhythm:
        for jobs in sorted({1, cores}):
            for kind in ("seconds", "cpu_seconds"):
                results[f"rhythm_added_{kind}_share_{jobs}_workers"] = (
                    results[f"{kind}_{jobs}_workers_with_rhythm"] / results[f"{kind}_{jobs}_workers"] - 1.0
                )
    return results


def bench_rescan(work: Path, files: int) -> dict:
    """N unchanged catalogued files: the catalog rows are written directly (sharing one analysis) so the
    benchmark does not spend minutes analysing; the rescan itself is the real scan code."""
    folder = work / "rescan_music"
    for i in range(files):
        sub = folder / f"album{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"track{i:05d}.mp3").write_bytes(b"x" * 64)
    music = MusicSegments(
        np.zeros(1),
        np.ones(1),
        np.zeros((1, 8), np.float32),
        {"T": np.zeros((1, 1), np.float32)},
        {"T": ["t"]},
    )
    with Catalog(work / "rescan.sqlite") as catalog:
        run = catalog.start_run(str(folder), "bench")
        paths = sorted(str(p) for p in folder.rglob("*.mp3"))
        first = fingerprint(paths[0])
        catalog.write_analysis(first, "bench", music, run)
        with catalog.transaction() as c:
            for path in paths[1:]:
                fp = fingerprint(path)
                fp.hash = first.hash  # identical bytes: one content, as duplicates share analysis
                catalog._upsert_track(c, fp, run)
        started = time.perf_counter()
        summary = scan(catalog, folder, "viml.demo.stats_analyzer:load", progress=False)
        wall = time.perf_counter() - started
    assert summary.unchanged == files, summary.as_dict()
    return {"files": files, "seconds": wall, "target_seconds": 2.0, "files_per_second": files / wall}


def timed(function, repeats: int) -> float:
    function()  # warm caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def bench_ranking(segments: int, dim: int = 512, per_track: int = 20, repeats: int = 15) -> dict:
    rng = np.random.default_rng(1)
    counts = rng.integers(per_track // 2, per_track * 3 // 2 + 1, size=segments // per_track + 10)
    counts = counts[np.cumsum(counts) <= segments]
    counts = np.append(counts, segments - counts.sum()).astype(np.int64)
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    embeddings = normalize_rows(rng.standard_normal((segments, dim)))
    results = {"segments": segments, "tracks": len(counts), "dimensions": dim}

    def brute(query):
        scores = embeddings @ query[0]
        top = np.argpartition(-scores, 50)[:50]
        return top[np.argsort(-scores[top])]

    baseline = timed(lambda: brute(normalize_rows(rng.standard_normal((1, dim)))), repeats)
    results["numpy_brute_force_top50_ms"] = baseline * 1000
    for name, k in (("prompt", 1), ("clip_30s", 3)):
        query = normalize_rows(rng.standard_normal((k, dim)))

        def rank(query=query):
            scores = window_scores(embeddings, starts, counts, query)
            return top_tracks(scores.best, None, 10), scores.best_offset

        seconds = timed(rank, repeats)
        results[f"{name}_ranking_ms"] = seconds * 1000
        results[f"{name}_vs_brute_force"] = seconds / baseline
    results["target_ms"] = 20.0
    return results


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build_catalog(path: Path, segments: int, space: str, dim: int, per_track: int = 20) -> int:
    """A catalog of `segments` segments (musicnn-sized: 400-d embeddings, 100 tags) with their retrieval
    embeddings in `space`, written through the store like a scan would; returns the track count."""
    rng = np.random.default_rng(2)
    tracks = segments // per_track
    names = {"MSD": [f"msd{i}" for i in range(50)], "MTT": [f"mtt{i}" for i in range(50)]}
    with Catalog(path) as catalog:
        run = catalog.start_run("/bench", "bench")
        for t in range(tracks):
            starts = np.arange(per_track) * 10.0
            music = MusicSegments(
                starts,
                starts + 10.0,
                rng.standard_normal((per_track, 400)).astype(np.float32),
                {name: rng.random((per_track, 50), dtype=np.float32) for name in names},
                names,
            )
            fp = Fingerprint(f"/bench/album{t // 100:03d}/track{t:05d}.mp3", 1, 1, f"{t:040x}", "mp3", 200.0)
            catalog.write_analysis(fp, "bench", music, run)
            catalog.write_retrieval(space, fp.hash, normalize_rows(rng.standard_normal((per_track, dim))))
    return tracks


def bench_loading(work: Path, segments: int, repeats: int = 5) -> dict:
    """What a query costs beyond ranking: getting the stacked segment matrix, from SQLite or the cache;
    then `viml suggest --prompt` end to end (new process each time) when a default bundle is installed."""
    from viml.search import Searcher
    from viml.search.query import encode_query
    from viml.search.spaces import retrieval_space

    bundle = None
    try:
        from viml.engine.runtime import open_bundle

        runtime = open_bundle(None)
        query = encode_query(runtime, None, 0.0, None, "calm piano", 1.0)
        space_id, dim, bundle = retrieval_space(runtime).id, query.shape[1], "default bundle"
    except Exception as error:  # no bundle: the in-process figures still stand
        print(f"  no usable default bundle ({error}); skipping the CLI figure")
        space_id, dim = "bench-space", 512
        query = normalize_rows(np.random.default_rng(3).standard_normal((1, dim)))
    path = work / "loading.sqlite"
    started = time.perf_counter()
    tracks = build_catalog(path, segments, space_id, dim)
    results: dict = {"segments": segments, "tracks": tracks, "dimensions": dim}
    results["build_seconds"] = time.perf_counter() - started

    def load(cache: bool) -> None:
        with Catalog(path) as catalog:  # a new connection, as each CLI call opens one
            catalog.load_tracks(space_id, cache=cache)

    def query_once(cache: bool) -> None:
        os.environ["VIML_NO_MATRIX_CACHE"] = "0" if cache else "1"  # what a CLI call would see
        with Catalog(path) as catalog:
            Searcher(catalog).rank(query, prompt="calm piano", top=10, space_id=space_id)

    results["load_from_sqlite_ms"] = timed(lambda: load(False), repeats) * 1000
    started = time.perf_counter()
    load(True)  # writes the cache entry (first query after a scan)
    results["first_load_writing_cache_ms"] = (time.perf_counter() - started) * 1000
    results["load_from_cache_ms"] = timed(lambda: load(True), repeats) * 1000
    results["load_speedup"] = results["load_from_sqlite_ms"] / results["load_from_cache_ms"]
    results["query_in_process_no_cache_ms"] = timed(lambda: query_once(False), repeats) * 1000
    results["query_in_process_cached_ms"] = timed(lambda: query_once(True), repeats) * 1000
    if bundle:
        command = [
            sys.executable,
            "-m",
            "viml.cli",
            "suggest",
            "--prompt",
            "calm piano",
            "--catalog",
            str(path),
        ]
        command += ["--format", "json"]
        for name, flag in (("no_cache", "1"), ("cached", "0")):
            env = {**os.environ, "VIML_NO_MATRIX_CACHE": flag}
            wall = []
            for _ in range(3):
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                wall.append(time.perf_counter() - started)
            results[f"cli_suggest_prompt_{name}_seconds"] = float(np.median(wall))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--scan-files", type=int, default=8, help="files for the scan benchmark (default 8)")
    parser.add_argument("--scan-seconds", type=float, default=30.0, help="length of each (default 30 s)")
    parser.add_argument("--rescan-files", type=int, default=10000, help="unchanged files to rescan")
    parser.add_argument("--segments", type=int, default=100000, help="segments to rank over")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these sections"
    )
    args = parser.parse_args(argv)
    cores = usable_cores()
    figures: dict = {"cpu_cores": cores}
    with tempfile.TemporaryDirectory(prefix="viml-bench-") as temp:
        work = Path(temp)
        if "scan" in args.only:
            print(f"scan: {args.scan_files} files × {args.scan_seconds:.0f} s, 44.1 kHz stereo WAV")
            with load_noted(figures, "scan"):
                figures["scan"] = scan_figures = bench_scan(work, args.scan_files, args.scan_seconds)
            print(f"  analyzer: {scan_figures['analyzer']}")
            for jobs in sorted({1, cores}):
                print(
                    f"  {jobs} worker(s): {scan_figures[f'realtime_multiple_{jobs}_workers']:.0f}× real time "
                    f"(target ≥ 100× on 2 cores); "
                    f"{scan_figures[f'audio_seconds_per_cpu_second_{jobs}_workers']:.0f} audio s per CPU s"
                )
            print(f"  scaling from 1 worker to {cores}: {scan_figures['core_scaling']:.2f}×")
            for jobs in sorted({1, cores}):
                if f"rhythm_added_seconds_share_{jobs}_workers" in scan_figures:
                    print(
                        f"  with the rhythm analysis, {jobs} worker(s): "
                        f"{scan_figures[f'realtime_multiple_{jobs}_workers_with_rhythm']:.0f}× real time; "
                        f"adds {100 * scan_figures[f'rhythm_added_seconds_share_{jobs}_workers']:.0f} % wall time, "
                        f"{100 * scan_figures[f'rhythm_added_cpu_seconds_share_{jobs}_workers']:.0f} % CPU time "
                        "(target ≤ 25 %)"
                    )
        if "rescan" in args.only:
            print(f"rescan: {args.rescan_files} unchanged files")
            with load_noted(figures, "rescan"):
                figures["rescan"] = rescan = bench_rescan(work, args.rescan_files)
            print(f"  {rescan['seconds']:.2f} s ({rescan['seconds'] / 2.0:.2f}× the 2 s target)")
        if "ranking" in args.only:
            print(f"ranking: {args.segments} segments × 512")
            with load_noted(figures, "ranking"):
                figures["ranking"] = ranking = bench_ranking(args.segments)
            print(
                "  numpy brute force (matmul + top-50, no offsets): "
                f"{ranking['numpy_brute_force_top50_ms']:.1f} ms"
            )
            for name in ("prompt", "clip_30s"):
                print(
                    f"  {name} with best offsets: {ranking[f'{name}_ranking_ms']:.1f} ms "
                    f"({ranking[f'{name}_vs_brute_force']:.2f}× brute force)"
                )
        if "loading" in args.only:
            print(f"loading the segment matrix: {args.segments} segments")
            with load_noted(figures, "loading"):
                figures["loading"] = loading = bench_loading(work, args.segments)
            print(
                f"  (catalog built in {loading['build_seconds']:.0f} s, {loading['dimensions']} dimensions)"
            )
            print(
                f"  from SQLite: {loading['load_from_sqlite_ms']:.0f} ms; from the matrix cache: "
                f"{loading['load_from_cache_ms']:.1f} ms ({loading['load_speedup']:.0f}× faster; the first "
                f"load after a write builds it: {loading['first_load_writing_cache_ms']:.0f} ms)"
            )
            print(
                f"  whole suggest() in process: {loading['query_in_process_no_cache_ms']:.0f} ms without the "
                f"cache, {loading['query_in_process_cached_ms']:.0f} ms with it"
            )
            if "cli_suggest_prompt_cached_seconds" in loading:
                print(
                    "  `viml suggest --prompt` end to end (new process, bundle load, prompt encoding): "
                    f"{loading['cli_suggest_prompt_no_cache_seconds']:.2f} s without the cache, "
                    f"{loading['cli_suggest_prompt_cached_seconds']:.2f} s with it"
                )
    print("load average (1 min) during each section: " + ", ".join(
        f"{name} {value['before']:.1f}→{value['after']:.1f}" for name, value in figures["load_average"].items()
    ))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


SECTIONS = ("scan", "rescan", "ranking", "loading")


@contextlib.contextmanager
def load_noted(figures: dict, section: str):
    """Record the 1-minute load average around a section: the machine is shared, so say how busy it was."""
    before = os.getloadavg()[0]
    yield
    figures.setdefault("load_average", {})[section] = {"before": before, "after": os.getloadavg()[0]}


if __name__ == "__main__":
    sys.exit(main())
