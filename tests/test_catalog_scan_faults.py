"""Scan faults: a worker killed mid-file, a crash in a one-process scan, kill -9 of a scan (its workers must
go with it), two scans of one catalog, --reanalyze, and analyses updated in place."""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_catalog_scan import write_wav
from viml.catalog import analysis
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, Fingerprint
from viml.core.errors import UserFacingError
from viml.core.processes import descendants, still_running
from viml.demo.stats_analyzer import StatsAnalyzer
from viml.engine.music.types import MusicSegments

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "test_catalog_scan_faults"  # the analyzers below, importable by the scans (HERE on PYTHONPATH)
STATS = "viml.demo.stats_analyzer:load"
CLI = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


# --- test-only analyzers (they run in the scan's processes) -------------------------------------------


class CrashingAnalyzer(StatsAnalyzer):
    """Dies on the files VIML_TEST_CRASH names ("name:SIGNAL,..."); SIGSEGV is a real null-pointer read."""

    def analyze_file(self, path):
        plan = dict(item.split(":") for item in os.environ.get("VIML_TEST_CRASH", "").split(",") if item)
        how = plan.get(os.path.basename(path))
        if how:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
            if how == "SIGSEGV":
                ctypes.string_at(0)
            os.kill(os.getpid(), getattr(signal, how))
            time.sleep(30)
        return super().analyze_file(path)


def crashing():
    """CrashingAnalyzer; in a worker, reading the tags of the file VIML_TEST_CRASH_IN_TAGS names segfaults
    too (a crash in the fingerprint stage, as in a tag parser)."""
    name = os.environ.get("VIML_TEST_CRASH_IN_TAGS")
    if name and multiprocessing.parent_process() is not None:
        read_file_tags = analysis.read_file_tags

        def crashing_read_file_tags(path):
            if os.path.basename(path) == name:
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                ctypes.string_at(0)
            return read_file_tags(path)

        analysis.read_file_tags = crashing_read_file_tags
    return CrashingAnalyzer()


class SlowAnalyzer(StatsAnalyzer):
    """Notes that it started (a file named by its pid in VIML_TEST_STARTED), then takes two minutes."""

    def analyze_file(self, path):
        if os.environ.get("VIML_TEST_NO_PDEATHSIG"):  # leave it to the portable fallback
            ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)
        open(os.path.join(os.environ["VIML_TEST_STARTED"], str(os.getpid())), "w").close()
        time.sleep(120)
        return super().analyze_file(path)


def slow():
    return SlowAnalyzer()


class OtherModel(StatsAnalyzer):
    id = "stats-v2"


def other_model():
    return OtherModel()


def crashes_while_loading():
    if multiprocessing.parent_process() is not None:  # in a worker; the scan itself loads it fine
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        ctypes.string_at(0)
    return StatsAnalyzer()


# --- helpers ---------------------------------------------------------------------------------------------


def music_folder(root, names):
    root.mkdir()
    for seed, name in enumerate(names):
        write_wav(root / name, 8 + seed % 3, seed)
    return root


def scan_env(**extra):
    path = os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_scan(folder, catalog, *extra, analyzer=STATS, env=None):
    command = [*CLI, "scan", str(folder), "--catalog", str(catalog), "--analyzer", analyzer, "--json", "-q"]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=180, env=env or scan_env()
    )


def failures_of(summary):
    return {os.path.basename(f["path"]): (f["kind"], f["message"]) for f in summary["failures"]}


def wait_until(condition, what, process, limit=60.0):
    deadline = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, f"the scan exited ({process.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads processes from /proc")


# --- a worker dies -----------------------------------------------------------------------------------------


def test_a_worker_killed_mid_file_fails_that_file_and_the_scan_goes_on(tmp_path):
    names = ["a.wav", "b.wav", "segv.wav", "c.wav", "kill.wav", "d.wav", "tags.wav"]
    folder = music_folder(tmp_path / "music", names)
    catalog = tmp_path / "c.sqlite"
    env = scan_env(VIML_TEST_CRASH="segv.wav:SIGSEGV,kill.wav:SIGKILL", VIML_TEST_CRASH_IN_TAGS="tags.wav")
    result = run_scan(folder, catalog, "-j", "2", analyzer=f"{MODULE}:crashing", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["analysed"] == 4
    died = "the analyser process died ({}) while reading this file"
    expected = {
        "segv.wav": ("crashed", died.format("signal SIGSEGV")),
        "kill.wav": ("crashed", died.format("signal SIGKILL, perhaps out of memory")),
        "tags.wav": ("crashed", died.format("signal SIGSEGV")),  # while fingerprinting it
    }
    assert failures_of(summary) == expected
    with Catalog(catalog) as opened:
        assert {os.path.basename(e["path"]): (e["kind"], e["message"]) for e in opened.errors()} == expected
        tracks = [os.path.basename(r[0]) for r in opened.connection.execute("SELECT path FROM tracks")]
    assert sorted(tracks) == ["a.wav", "b.wav", "c.wav", "d.wav"]
    # The next scan does not try them again (until they change).
    again = run_scan(folder, catalog, "-j", "2", analyzer=f"{MODULE}:crashing", env=env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["analysed"], summary["unchanged"], summary["still_failing"]) == (0, 4, 3)


def test_a_crash_in_a_one_process_scan_is_isolated_by_the_next_scan(tmp_path):
    folder = music_folder(tmp_path / "music", ["a.wav", "b.wav", "m.wav", "x.wav", "y.wav"])
    catalog = tmp_path / "c.sqlite"
    env = scan_env(VIML_TEST_CRASH="m.wav:SIGSEGV")
    crashing_scan = f"{MODULE}:crashing"
    # -j 1 analyses in the scan's own process: the crash takes the scan with it...
    first = run_scan(folder, catalog, "-j", "1", analyzer=crashing_scan, env=env)
    assert first.returncode == -signal.SIGSEGV
    # ...and the next scan analyses the file it died on in a worker process: that file fails, not the scan.
    second = run_scan(folder, catalog, "-j", "1", analyzer=crashing_scan, env=env)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    died = ("crashed", "the analyser process died (signal SIGSEGV) while reading this file")
    assert failures_of(summary) == {"m.wav": died}
    assert summary["analysed"] + summary["unchanged"] == 4
    third = run_scan(folder, catalog, "-j", "1", analyzer=crashing_scan, env=env)
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert (summary["analysed"], summary["unchanged"], summary["still_failing"]) == (0, 4, 1)


def test_a_worker_that_dies_loading_the_model_stops_the_scan_without_failing_files(tmp_path):
    folder = music_folder(tmp_path / "music", ["a.wav", "b.wav", "c.wav"])
    with Catalog(tmp_path / "c.sqlite") as catalog:
        with pytest.raises(UserFacingError, match="died while loading .*signal SIGSEGV"):
            scan(catalog, folder, f"{__name__}:crashes_while_loading", jobs=2, progress=False)
        assert catalog.errors() == []


# --- kill -9 of the scan ------------------------------------------------------------------------------------


@needs_proc
@pytest.mark.parametrize("how", ["pdeathsig", "parent watch"])
def test_workers_exit_with_a_scan_killed_by_sigkill(tmp_path, how):
    folder = music_folder(tmp_path / "music", ["a.wav", "b.wav", "c.wav", "d.wav"])
    started = tmp_path / "started"
    started.mkdir()
    command = [*CLI, "scan", str(folder), "--catalog", str(tmp_path / "c.sqlite"), "-q", "-j", "2"]
    process = subprocess.Popen(
        [*command, "--analyzer", f"{MODULE}:slow"],
        env=scan_env(
            VIML_TEST_STARTED=str(started), VIML_TEST_NO_PDEATHSIG="1" if how != "pdeathsig" else ""
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # only for the clean-up below: the test kills the scan alone
    )
    try:
        wait_until(lambda: len(os.listdir(started)) >= 2, "both workers analysing", process)
        family = descendants(process.pid)
        workers = {int(name) for name in os.listdir(started)}
        assert workers <= set(family)  # and the resource tracker, where multiprocessing started one
        os.kill(process.pid, signal.SIGKILL)
        killed = time.monotonic()
        process.wait()
        deadline = time.monotonic() + 2.0
        while still_running(family) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert still_running(family) == [], f"children of the killed scan live on: {still_running(family)}"
        print(
            f"{how}: {len(family)} children of the scan, all gone {time.monotonic() - killed:.2f} s after kill -9"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- two scans of one catalog --------------------------------------------------------------------------------


def test_a_second_scan_of_a_catalog_is_refused_while_one_runs(tmp_path):
    folder = music_folder(tmp_path / "music", ["a.wav", "b.wav", "c.wav"])
    catalog = tmp_path / "c.sqlite"
    gate = tmp_path / "gate"
    gate.mkdir()  # no tickets: the first scan waits inside its first analysis
    command = [*CLI, "scan", str(folder), "--catalog", str(catalog), "-q", "-j", "1"]
    first = subprocess.Popen(
        [*command, "--analyzer", "viml.demo.stats_analyzer:load_gated"],
        env=scan_env(VIML_TEST_SCAN_GATE=str(gate)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = tmp_path / "c.sqlite-scan.lock"
        wait_until(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), "the lock", first)
        second = run_scan(folder, catalog)
        assert second.returncode == 1
        assert second.stderr == f"viml: error: another scan of {catalog} is running (pid {first.pid})\n"
    finally:
        first.kill()  # kill -9: the kernel drops its lock
        first.wait()
    third = run_scan(folder, catalog)
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert summary["analysed"] == 3 and summary["failures"] == []  # killed in a file is not the file's fault


# --- --reanalyze and in-place updates ---------------------------------------------------------------------


def test_reanalyze_redoes_unchanged_touched_and_duplicate_files_in_place(tmp_path):
    folder = music_folder(tmp_path / "music", ["t0.wav", "t1.wav", "t2.wav"])
    (folder / "dup.wav").write_bytes((folder / "t0.wav").read_bytes())
    with Catalog(tmp_path / "c.sqlite") as catalog:
        first = scan(catalog, folder, STATS, jobs=1, progress=False)
        assert (first.analysed, first.linked) == (3, 1)
        unchanged = scan(catalog, folder, STATS, jobs=1, progress=False)
        assert (unchanged.analysed, unchanged.unchanged) == (0, 4)
        # --reanalyze: every file again, even under the same model; the duplicate links to the new analysis.
        forced = scan(catalog, folder, STATS, jobs=1, progress=False, reanalyze=True)
        assert (forced.analysed, forced.reanalysed, forced.linked, forced.failures) == (3, 3, 1, [])
        os.utime(folder / "t1.wav", ns=(1, 2_000_000_000))  # touched: its stat changed, its content did not
        # Another model: unchanged files analysed under the old one are redone without being asked.
        other = scan(catalog, folder, f"{__name__}:other_model", jobs=1, progress=False)
        assert (other.analysed, other.reanalysed, other.linked, other.failures) == (3, 3, 1, [])
        analyzers = catalog.connection.execute("SELECT DISTINCT analyzer FROM contents").fetchall()
        assert analyzers == [("stats-v2",)]
        assert catalog.counts() == {"tracks": 4, "segments": first_segments(catalog), "errors": 0}
        again = scan(catalog, folder, f"{__name__}:other_model", jobs=1, progress=False)
        assert (again.analysed, again.unchanged) == (0, 4)


def first_segments(catalog):
    return catalog.connection.execute(
        "SELECT SUM(c.segment_count) FROM tracks t JOIN contents c ON c.hash = t.hash"
    ).fetchone()[0]


def segments(count, value):
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(1, count + 1) * 10.0,
        embeddings=np.full((count, 4), value, np.float32),
        tag_probabilities={"T": np.full((count, 2), value, np.float32)},
        tag_names={"T": ["x", "y"]},
    )


def test_write_analysis_updates_a_stored_content_in_place(tmp_path):
    """A second scan or --reanalyze writes a content that tracks already point at: no foreign key error."""
    with Catalog(tmp_path / "c.sqlite") as catalog:
        one = Fingerprint(path=str(tmp_path / "one.wav"), size=1, mtime_ns=1, hash="h")
        two = Fingerprint(path=str(tmp_path / "two.wav"), size=1, mtime_ns=1, hash="h")
        catalog.write_analysis(one, "model-a", segments(2, 0.5), run=1)
        catalog.link_track(two, run=1)
        catalog.write_retrieval("space", "h", np.ones((2, 3), np.float32))
        catalog.write_analysis(one, "model-b", segments(3, 0.25), run=2)
        c = catalog.connection
        assert c.execute("SELECT hash, analyzer, segment_count FROM contents").fetchall() == [
            ("h", "model-b", 3)
        ]
        stored = catalog.music_segments("h")
        assert len(stored.starts) == 3 and np.all(stored.embeddings == 0.25)
        assert catalog.counts()["tracks"] == 2
        assert c.execute("SELECT COUNT(*) FROM retrieval").fetchone() == (0,)  # made from the old analysis
