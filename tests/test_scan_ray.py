"""`viml scan --ray`: a scan on a Ray cluster writes the same catalog as a local scan; a Ray scan killed with
-9 resumes to the same catalog again and leaves no Ray process behind; a worker that dies fails its file.

One local Ray cluster (2 CPUs) serves the in-process scans of this module (Ray takes seconds to start);
the kill test starts its own, as `viml scan --ray` does with no address, so that its fate is tested too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
from test_catalog_scan import catalog_dump, write_wav
from test_catalog_scan_faults import CLI, MODULE, scan_env
from viml.catalog.scan import scan
from viml.catalog.store import Catalog
from viml.core.processes import descendants, session_members, still_running

ray = pytest.importorskip("ray")

STATS = "viml.demo.stats_analyzer:load"
GATED = "viml.demo.stats_analyzer:load_gated"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray") / "music"
    (root / "sub").mkdir(parents=True)
    for i in range(8):
        write_wav(root / ("sub" if i % 3 == 0 else "") / f"track{i:02d}.wav", 8 + (i % 4) * 3, seed=i)
    write_wav(root / "sub" / "dup.wav", 8, seed=0)  # the content of track00: linked, not analysed again
    (root / "bad.mp3").write_bytes(b"garbage" * 10)
    return root


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """The catalog a local scan (the process pool, 2 workers) writes."""
    path = tmp_path_factory.mktemp("reference") / "local.sqlite"
    result = subprocess.run(
        [*CLI, "scan", str(folder), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "2"],
        capture_output=True, text=True, timeout=180, env=scan_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return catalog_dump(path)


def short_temp_dir():
    """Ray's sockets live under its temp folder, and a Unix socket path has ~107 bytes at most."""
    return tempfile.mkdtemp(prefix="viml-ray-", dir="/tmp")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module; its workers import the test analyzers (tests on the path)."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_TMPDIR")}
    temp = short_temp_dir()
    os.environ["PYTHONPATH"] = scan_env()["PYTHONPATH"]
    os.environ["RAY_TMPDIR"] = temp
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp, ignore_errors=True)


def test_a_ray_scan_writes_the_same_catalog_as_a_local_scan(folder, reference, cluster, tmp_path):
    path = tmp_path / "ray.sqlite"
    with Catalog(path) as catalog:
        summary = scan(catalog, folder, STATS, jobs=2, progress=False, ray="")
        assert (summary.analysed, summary.linked, len(summary.failures)) == (8, 1, 1)
        again = scan(catalog, folder, STATS, jobs=2, progress=False, ray="")  # nothing to do: no actors
        assert (again.analysed, again.unchanged, again.still_failing) == (0, 9, 1)
    assert catalog_dump(path) == reference  # tracks, segment embeddings and tags, errors, vocabularies
    assert ray.is_initialized()  # a cluster the scan did not start is left running for its owner


def test_a_ray_worker_that_dies_fails_only_its_file(folder, cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("VIML_TEST_CRASH", "track02.wav:SIGKILL,track04.wav:SIGSEGV")  # forwarded to actors
    with Catalog(tmp_path / "crash.sqlite") as catalog:
        summary = scan(catalog, folder, f"{MODULE}:crashing", jobs=2, progress=False, ray="")
        failed = {os.path.basename(f.path): f.kind for f in summary.failures}
        assert failed == {"track02.wav": "crashed", "track04.wav": "crashed", "bad.mp3": "undecodable"}
        assert (summary.analysed, summary.linked) == (6, 1)
        message = next(f.message for f in summary.failures if f.path.endswith("track02.wav"))
        assert message.startswith("the analyser process died (Ray worker lost")


def describe(pids):
    """pid: command line and the reaper's token, for a failure message."""
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ")[:120].decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as handle:
                token = [v for v in handle.read().split(b"\0") if v.startswith(b"VIML_RAY_REAPER")]
        except OSError as error:
            command, token = str(error), []
        found.append(f"{pid}: {command} {token}")
    return "; ".join(found)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads processes from /proc")
def test_a_ray_scan_killed_with_sigkill_resumes_to_the_same_catalog(folder, reference, cluster, tmp_path):
    path = tmp_path / "killed.sqlite"
    gate = tmp_path / "gate"
    gate.mkdir()
    temp = short_temp_dir()
    env = scan_env(VIML_TEST_SCAN_GATE=str(gate), RAY_TMPDIR=temp)
    command = [*CLI, "scan", str(folder), "--catalog", str(path), "--analyzer", GATED, "-q", "--events",
               "--ray"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        start_new_session=True,  # its session holds the local cluster it starts: every process is found
    )  # fmt: skip
    # A stuck scan is killed after two minutes, which ends the event loop below with a clear failure.
    watchdog = threading.Timer(120.0, lambda: os.killpg(process.pid, signal.SIGKILL))
    watchdog.start()
    try:
        for i in range(4):  # four decodes may finish (the scan needs nine), so the kill lands mid-scan
            (gate / f"ticket-{i}").touch()
        decoded = 0
        assert process.stdout is not None
        for line in process.stdout:
            decoded += json.loads(line).get("outcome") in ("analysed", "failed")
            if decoded == 4:
                break
        assert decoded == 4 and process.poll() is None, "a gated scan cannot finish"
        family = {
            **descendants(process.pid),
            **{pid: p.started for pid, p in session_members(process.pid).items()},
        }
        family.pop(process.pid, None)
        assert len(family) >= 3, family  # Ray's daemons and the two actors
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 20.0  # Ray's daemons notice their driver's death and exit
        while still_running(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert still_running(family) == [], (
            f"Ray processes of the killed scan live on: {describe(still_running(family))}"
        )
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(temp, ignore_errors=True)
    with Catalog(path) as catalog:
        before = catalog.counts()
    assert 4 <= before["tracks"] + before["errors"] < 10  # committed work survived, the rest is missing
    with Catalog(path) as catalog:  # resumed on a Ray cluster (this module's: its start-up is paid)
        summary = scan(catalog, folder, STATS, jobs=2, progress=False, ray="")
        redone = summary.analysed + summary.linked + len(summary.failures)
        assert redone + summary.unchanged + summary.still_failing == 10
        assert summary.analysed < 8  # what the killed scan committed was not analysed again
    assert catalog_dump(path) == reference
