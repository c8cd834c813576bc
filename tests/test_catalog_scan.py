"""Scan mechanics: incremental rescans, moved files, hostile files, kill -9 at random points, reads during writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest
from viml.catalog import analysis
from viml.catalog.scan import scan
from viml.catalog.store import Catalog
from viml.demo.stats_analyzer import StatsAnalyzer
from viml.engine.vectors import normalize_rows
from viml.search.ranking import window_scores

STATS = "viml.demo.stats_analyzer:load"
CLI = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


def write_wav(path, seconds, seed, rate=8000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    signal_ = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(len(t))
    with wave.open(os.fsdecode(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((signal_ * 32767).astype("<i2").tobytes())


def run_scan(folder, catalog, *extra, **kwargs):
    return subprocess.run(
        [
            *CLI,
            "scan",
            os.fsdecode(folder),
            "--catalog",
            os.fsdecode(catalog),
            "--analyzer",
            STATS,
            "--json",
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def catalog_dump(path):
    """Everything a scan decides, without run ids and timestamps."""
    with Catalog(path) as catalog:
        c = catalog.connection
        return {
            "tracks": c.execute(
                "SELECT path, path_raw, folder, size, mtime_ns, hash, format, duration, title, artist, genre, bpm "
                "FROM tracks ORDER BY path"
            ).fetchall(),
            "contents": c.execute(
                "SELECT hash, analyzer, duration, segment_count, embedding_dim FROM contents ORDER BY hash"
            ).fetchall(),
            "segments": c.execute("SELECT * FROM segments ORDER BY hash, idx").fetchall(),
            "errors": c.execute(
                "SELECT path, size, mtime_ns, kind, message FROM errors ORDER BY path"
            ).fetchall(),
            "vocabularies": c.execute("SELECT * FROM vocabularies").fetchall(),
        }


class CountingAnalyzer(StatsAnalyzer):
    calls = 0

    def analyze_file(self, path):
        CountingAnalyzer.calls += 1
        return super().analyze_file(path)


def counting():
    return CountingAnalyzer()


def test_rescan_is_incremental_and_moves_keep_analysis(tmp_path, monkeypatch):
    folder = tmp_path / "music"
    folder.mkdir()
    for i in range(4):
        write_wav(folder / f"t{i}.wav", 12 + i, seed=i)
    monkeypatch.setattr(sys.modules[__name__], "counting", counting)
    spec = f"{__name__}:counting"
    with Catalog(tmp_path / "c.sqlite") as catalog:
        first = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (first.analysed, first.unchanged, CountingAnalyzer.calls) == (4, 0, 4)
        again = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (again.analysed, again.unchanged, CountingAnalyzer.calls) == (0, 4, 4)
        os.rename(folder / "t0.wav", folder / "renamed.wav")
        (folder / "deeper").mkdir()
        os.rename(folder / "t1.wav", folder / "deeper" / "t1.wav")
        os.utime(folder / "t2.wav", ns=(1, 1_000_000_000))
        (folder / "t3.wav").unlink()
        write_wav(folder / "new.wav", 11, seed=99)
        moved = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (moved.linked, moved.touched, moved.removed, moved.analysed) == (2, 1, 3, 1)
        assert CountingAnalyzer.calls == 5  # only the new file was decoded
        assert catalog.counts()["tracks"] == 4
        assert catalog.track(folder / "renamed.wav") is not None


def hostile_folder(root):
    """Every kind of bad file a real music folder can hold, plus two good ones; returns the bad names."""
    root.mkdir()
    write_wav(root / "good.wav", 12, seed=1)
    write_wav(root / os.fsdecode(b"caf\xe9 latin1 name.wav"), 11, seed=2)  # non-UTF-8 name, good audio
    (root / "zero.mp3").write_bytes(b"")
    write_wav(root / "full.wav", 12, seed=3)
    (root / "truncated.wav").write_bytes((root / "full.wav").read_bytes()[:30])
    (root / "full.wav").unlink()
    (root / "text.flac").write_text("this is not audio\n" * 50)
    # ID3 header announcing ~256 MB of tags, then garbage: parsers must not trust the size.
    (root / "huge_header.mp3").write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + os.urandom(2000))
    header = bytearray((root / "good.wav").read_bytes()[:44])
    header[40:44] = (0xFFFFFFF0).to_bytes(4, "little")  # WAV data chunk claims 4 GB
    (root / "huge_data.wav").write_bytes(bytes(header) + b"\x00" * 100)
    locked = root / "locked.ogg"
    locked.write_bytes(os.urandom(500))
    locked.chmod(0)
    os.symlink("self.mp3", root / "self.mp3")  # a link to itself
    os.symlink("missing.wav", root / "dangling.wav")
    os.symlink(".", root / "loop")  # a folder link back to its parent
    os.mkfifo(root / "pipe.wav")  # reading it would block forever
    return {
        "zero.mp3", "truncated.wav", "text.flac", "huge_header.mp3", "huge_data.wav", "locked.ogg",
        "self.mp3", "dangling.wav", "pipe.wav",
    }  # fmt: skip


def test_hostile_files_are_all_reported_and_nothing_crashes(tmp_path):
    bad = hostile_folder(tmp_path / "hostile")
    result = run_scan(tmp_path / "hostile", tmp_path / "c.sqlite", "-j", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    import json

    summary = json.loads(result.stdout)
    reported = {os.path.basename(f["path"]) for f in summary["failures"]}
    assert reported == bad
    assert summary["analysed"] == 2
    assert summary["skipped"] == {"folder link already scanned (loop or duplicate)": 1}
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert {os.path.basename(e["path"]) for e in catalog.errors()} == bad
        tracks = catalog.connection.execute("SELECT path, path_raw FROM tracks ORDER BY path").fetchall()
    assert [os.path.basename(raw) for _, raw in tracks] == [b"caf\xe9 latin1 name.wav", b"good.wav"]
    assert tracks[0][0].endswith("caf\\xe9 latin1 name.wav")
    kinds = {os.path.basename(f["path"]): f["kind"] for f in summary["failures"]}
    assert kinds["zero.mp3"] == "empty" and kinds["pipe.wav"] == "not-a-file"
    assert kinds["self.mp3"] == kinds["dangling.wav"] == "unreadable"
    if os.geteuid() != 0:  # root reads any file, so the permission error cannot happen there
        assert kinds["locked.ogg"] == "unreadable"
    # Known-bad unchanged files are not retried, and still counted.
    again = json.loads(run_scan(tmp_path / "hostile", tmp_path / "c.sqlite").stdout)
    assert again["still_failing"] == len(bad) - 3  # links and the pipe have no stat to compare
    assert again["unchanged"] == 2


@pytest.fixture
def kill_folder(tmp_path):
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    for i in range(14):
        write_wav(folder / ("sub" if i % 3 == 0 else "") / f"track{i:02d}.wav", 8 + (i % 5) * 3, seed=i)
    write_wav(folder / "sub" / "dup.wav", 8, seed=0)  # same content as track00
    (folder / "bad.mp3").write_bytes(b"garbage" * 10)
    return folder


def committed(path, what="tracks + errors"):
    """Rows the scan has committed, read as any other reader would (0 before the tables exist)."""
    if not path.exists():
        return 0
    import sqlite3

    tables = what.split(" + ")
    connection = sqlite3.connect(path, timeout=30.0)
    try:
        query = "SELECT " + " + ".join(f"(SELECT COUNT(*) FROM {table})" for table in tables)
        return connection.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        connection.close()


def wait_for(condition, what, process, limit=60.0):
    """Progress, not time, decides when to kill; the limit only turns a stuck scan into a clear failure."""
    deadline = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, f"the scan exited ({process.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"no progress: {what}"
        time.sleep(0.002)


def test_scan_killed_20_times_then_resumed_equals_uninterrupted_scan(tmp_path, kill_folder):
    reference = tmp_path / "reference.sqlite"
    assert run_scan(kill_folder, reference, "-j", "1").returncode == 0
    interrupted = tmp_path / "interrupted.sqlite"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "VIML_TEST_SCAN_GATE": str(gate)}
    # 15 analyses finish the folder (14 contents + the undecodable file, an error row; the duplicate is
    # linked). Each attempt gets fewer tickets than analyses still missing, so none can finish: each of
    # the 20 is really killed, and the catalog still fills up across attempts.
    rng = random.Random(7)
    points = []
    for attempt in range(20):
        for name in os.listdir(gate):
            os.unlink(gate / name)
        missing = 15 - committed(interrupted, "contents + errors")
        moment = ("starting", "analysing", "committed", "committed")[attempt % 4]
        tickets = min(rng.choice([1, 2]) if moment != "starting" else 0, missing - 1)
        before = committed(interrupted)
        jobs = 2 if attempt % 3 == 1 else 1  # the pool's workers die with it; one-process scans start faster
        process = subprocess.Popen(
            [*CLI, "scan", str(kill_folder), "--catalog", str(interrupted), "--analyzer",
             "viml.demo.stats_analyzer:load_gated", "-q", "-j", str(jobs)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
        )  # fmt: skip
        for i in range(tickets):
            (gate / f"ticket-{attempt}-{i}").touch()
        if moment == "analysing":  # every ticket taken: the kill lands inside an analysis or a commit
            wait_for(lambda: not any(n.startswith("ticket-") for n in os.listdir(gate)), "tickets", process)
        elif moment == "committed":  # the ticketed files are written; the scan waits for the next ticket
            target = before + tickets
            wait_for(lambda: committed(interrupted) >= target, "commits", process)  # noqa: B023 (used at once)
        assert process.poll() is None, "a gated scan cannot finish, so this kill must land"
        os.killpg(process.pid, signal.SIGKILL)  # the scan and its workers, like a crash
        process.wait()
        points.append((moment, committed(interrupted)))
        if attempt % 5 == 4 and interrupted.exists():
            # Some runs catch the database between files: it must always open and read.
            with Catalog(interrupted) as catalog:
                catalog.load_tracks()
    assert len({count for _, count in points}) >= 5, points  # killed at many points of progress
    assert run_scan(kill_folder, interrupted, "-j", "2").returncode == 0
    assert catalog_dump(interrupted) == catalog_dump(reference)
    with Catalog(interrupted) as catalog:
        statuses = {row[0] for row in catalog.connection.execute("SELECT status FROM scan_runs")}
    assert statuses <= {"done", "interrupted"}


def test_queries_run_while_a_scan_writes(tmp_path, kill_folder):
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    process = subprocess.Popen(
        [*CLI, "scan", str(kill_folder), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    reads, sizes = 0, set()
    with Catalog(path) as catalog:
        while process.poll() is None or reads == 0:
            table = catalog.load_tracks()
            for content_hash, count in zip(table.hashes, table.counts, strict=True):
                stored = catalog.connection.execute(
                    "SELECT segment_count FROM contents WHERE hash = ?", (content_hash,)
                ).fetchone()[0]
                assert stored == count  # never a half-written track
            if len(table.paths):
                query = normalize_rows(table.embeddings[:1])
                assert window_scores(table.embeddings, table.starts, table.counts, query).best.max() > 0.99
            sizes.add(len(table.paths))
            reads += 1
    assert process.wait() == 0, process.stderr.read()
    assert reads > 3 and len(sizes) > 1  # reads really interleaved with the writes


def test_default_analyzer_is_the_music_model():
    assert analysis.DEFAULT_ANALYZER == "viml.catalog.analysis:load_music_model"


def test_workers_share_the_cores_for_model_threads():
    assert [analysis.threads_per_worker(w, cores=2) for w in (1, 2, 3)] == [2, 1, 1]
    assert [analysis.threads_per_worker(w, cores=16) for w in (1, 2, 4, 32)] == [16, 8, 4, 1]


class ThreadsRecorder(StatsAnalyzer):
    """Notes which process analysed a file and the model threads it was given."""

    def analyze_file(self, path):
        record = os.path.join(os.environ["VIML_TEST_THREADS_LOG"], f"{os.getpid()}-{os.path.basename(path)}")
        with open(record, "w") as handle:
            handle.write(os.environ.get("VIML_ANALYZER_THREADS", "unset"))
        return super().analyze_file(path)


def threads_recorder():
    return ThreadsRecorder()


def test_scan_workers_get_their_share_of_the_cores(tmp_path, monkeypatch):
    folder = tmp_path / "music"
    folder.mkdir()
    for i in range(4):
        write_wav(folder / f"t{i}.wav", 11, seed=i)
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("VIML_TEST_THREADS_LOG", str(log))
    monkeypatch.delenv("VIML_ANALYZER_THREADS", raising=False)
    monkeypatch.setattr(analysis, "usable_cores", lambda: 6)  # the parent splits 6 cores over 2 workers
    with Catalog(tmp_path / "c.sqlite") as catalog:
        summary = scan(catalog, folder, f"{__name__}:threads_recorder", jobs=2, progress=False)
    assert summary.analysed == 4
    records = {name.split("-", 1)[0]: (log / name).read_text() for name in os.listdir(log)}
    assert str(os.getpid()) not in records  # analysed in the workers
    assert set(records.values()) == {"3"}
