"""The scan on Ray vs the local process pool, the single writer's commit rate, and scaling on paper.

    python bench/cluster_scan.py [--files 12] [--seconds 60] [--json PATH]

All in one run, on one folder of stereo 44.1 kHz WAV files, each scan a `viml scan` process of its own:
- the local process pool (-j 2, the baseline) vs `--ray` with 1 and 2 workers (a local Ray cluster
  started by the scan, as `viml scan --ray` does with no address): wall time, CPU seconds of every
  process of the scan (Ray's daemons included; read from /proc while it runs), audio seconds per CPU
  second, and Ray's overhead (wall and CPU beyond the pool's);
- the single writer: analysed files committed per second by one process (one transaction each, the
  scan's own write_analysis), with the real analysis of a file from this run;
- from those measured figures, the scan of 100,000 and 1,000,000 four-minute tracks on 8, 64 and 512
  cores (assumptions printed with the table).
Uses the real music model when converted (`viml convert-musicnn`; the rhythm analysis too when BeatNet is
converted), else the audio-statistics analyzer, and says which.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from viml.core.processes import session_members  # noqa: E402

from catalog import write_music  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


def session_cpu(session: int, seen: dict[int, float]) -> None:
    """CPU seconds so far of every process in `session` (kept per pid: the last reading before it ends)."""
    for pid, info in session_members(session).items():
        seen[pid] = info.cpu_seconds


def measured_scan(folder: Path, catalog: Path, analyzer: str, extra: list[str]) -> dict:
    command = [*CLI, "scan", str(folder), "--catalog", str(catalog), "--analyzer", analyzer, "--json", "-q"]
    started = time.perf_counter()
    process = subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True, text=True)  # fmt: skip
    seen: dict[int, float] = {}
    while process.poll() is None:
        session_cpu(process.pid, seen)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    summary = json.loads(process.stdout.read().strip().splitlines()[-1]) if process.stdout else {}
    if process.returncode != 0 or not summary.get("analysed"):
        raise SystemExit(f"scan {' '.join(extra)} failed ({process.returncode})")
    cpu = sum(seen.values())
    audio = summary["audio_seconds"]
    return {"wall s": round(wall, 2), "cpu s": round(cpu, 2), "processes": len(seen),
            "audio s per wall s": round(audio / wall, 1), "audio s per cpu s": round(audio / cpu, 1),
            "analysed": summary["analysed"]}  # fmt: skip


def writer_rate(catalog_path: Path, count: int) -> dict:
    """One process committing `count` analysed files (one transaction each), with a real analysis."""
    from viml.catalog.store import Catalog, Fingerprint

    with Catalog(catalog_path) as source:
        content = source.connection.execute("SELECT hash FROM contents LIMIT 1").fetchone()[0]
        music = source.music_segments(content)
        rhythm = source.rhythm(content)
        analyzer = source.content_analyzer(content)
    if rhythm is not None:
        from dataclasses import replace

        music = replace(music, rhythm=rhythm, rhythm_id="bench")
    with tempfile.TemporaryDirectory() as work, Catalog(Path(work) / "writer.sqlite") as catalog:
        run = catalog.start_run(work, analyzer)
        started = time.perf_counter()
        for i in range(count):
            fp = Fingerprint(
                f"{work}/album{i // 100}/track{i:06d}.flac", 1000 + i, i, f"{i:040x}", "flac", 240.0
            )
            catalog.write_analysis(fp, analyzer, music, run)
        seconds = time.perf_counter() - started
    return {"files": count, "segments per file": len(music.starts), "with rhythm": rhythm is not None,
            "files per s": round(count / seconds, 1)}  # fmt: skip


def scaling(per_cpu: float, ray_efficiency: float, writer: float, minutes: float = 4.0) -> list[dict]:
    """The paper table: analysis-limited rate = cores x per-core rate x Ray's efficiency, capped by the
    writer; the file bandwidth the workers need from the shared storage (FLAC at ~0.9 MB per minute...)."""
    rows = []
    track = minutes * 60.0
    for cores in (8, 64, 512):
        analysis = cores * per_cpu * ray_efficiency / track  # files per second the workers can analyse
        files_per_s = min(analysis, writer)
        rows.append({
            "cores": cores,
            "analysis-limited files/s": round(analysis, 1),
            "writer-limited files/s": round(writer, 1),
            "files/s": round(files_per_s, 1),
            "bound by": "writer" if writer < analysis else "analysis",
            "storage read MB/s (FLAC ~30 MB/track)": round(files_per_s * 30, 0),
            "100,000 tracks h": round(100_000 / files_per_s / 3600, 2),
            "1,000,000 tracks h": round(1_000_000 / files_per_s / 3600, 1),
        })  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writes", type=int, default=300, help="files the writer benchmark commits")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from viml.catalog.analysis import load_analyzer

    analyzer = "viml.catalog.analysis:load_music_model"
    try:
        model = load_analyzer(analyzer)
        name = "musicnn" + (" + rhythm (BeatNet)" if getattr(model, "rhythm_id", None) else "")
    except Exception as error:
        print(f"music model unavailable ({error}); using the audio-statistics analyzer")
        analyzer, name = "viml.demo.stats_analyzer:load", "audio statistics"
    figures: dict = {"analyzer": name, "files": args.files, "seconds per file": args.seconds,
                     "cores": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="viml-cluster-bench-") as work:
        folder = Path(work) / "music"
        folder.mkdir()
        write_music(folder, args.files, args.seconds)
        runs = {"pool -j 2 (baseline)": ["-j", "2"], "ray, 1 worker": ["--ray", "-j", "1"],
                "ray, 2 workers": ["--ray", "-j", "2"], "pool -j 1": ["-j", "1"]}  # fmt: skip
        for label, extra in runs.items():
            figures[label] = measured_scan(
                folder, Path(work) / f"{label.split()[0]}{extra[-1]}.sqlite", analyzer, extra
            )
            print(f"{label}: {figures[label]}", flush=True)
        base, ray2 = figures["pool -j 2 (baseline)"], figures["ray, 2 workers"]
        figures["ray overhead (2 workers vs pool)"] = {
            "wall s": round(ray2["wall s"] - base["wall s"], 2),
            "cpu s": round(ray2["cpu s"] - base["cpu s"], 2),
            "throughput per cpu vs pool": round(ray2["audio s per cpu s"] / base["audio s per cpu s"], 3),
        }
        print(f"Ray's overhead: {figures['ray overhead (2 workers vs pool)']}")
        figures["writer"] = writer_rate(Path(work) / "pool2.sqlite", args.writes)
        print(f"single writer: {figures['writer']}")
    per_cpu = figures["pool -j 1"]["audio s per cpu s"]
    efficiency = min(
        1.0,
        figures["ray, 2 workers"]["audio s per cpu s"] / figures["pool -j 2 (baseline)"]["audio s per cpu s"],
    )
    figures["scaling on paper"] = {
        "assumptions": (
            f"per core {per_cpu} audio s per CPU s (measured, one worker, this machine), times Ray's "
            f"per-CPU efficiency {efficiency:.2f} (measured, 2 workers vs the pool, start-up included: a long "
            "scan amortises it); 4-minute tracks; one writer at the measured rate on a local disk (a "
            "network file system for the catalog would be slower); the music folder on shared storage "
            "that serves the read rate in the table (FLAC ~30 MB per 4-minute track); decode on the "
            "workers; no stragglers"
        ),
        "rows": scaling(per_cpu, efficiency, figures["writer"]["files per s"]),
    }
    for row in figures["scaling on paper"]["rows"]:
        print(row)
    print(figures["scaling on paper"]["assumptions"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
