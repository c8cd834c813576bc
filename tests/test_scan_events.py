"""`viml scan --events`: the documented JSON event stream, and the desktop's scan child that follows it."""

from __future__ import annotations

import json
import subprocess

from test_catalog_scan import CLI, STATS, write_wav


def folder_with_work(root):
    root.mkdir()
    for index in range(3):
        write_wav(root / f"track{index}.wav", 12.0, index)
    (root / "copy.wav").write_bytes((root / "track0.wav").read_bytes())
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    return root


def test_events_follow_the_schema(tmp_path):
    folder = folder_with_work(tmp_path / "music")
    command = [*CLI, "scan", str(folder), "--catalog", str(tmp_path / "c.sqlite"), "--analyzer", STATS,
               "--events", "-q", "-j", "1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    started, *files, summary = events
    assert started["event"] == "started" and started["files"] == 5 and started["to_do"] == 5
    assert started["analysis"].startswith("stats")
    assert [e["event"] for e in files] == ["file"] * 5
    assert [e["done"] for e in files] == [1, 2, 3, 4, 5] and {e["to_do"] for e in files} == {5}
    outcomes = sorted(e["outcome"] for e in files)
    assert outcomes == ["analysed", "analysed", "analysed", "failed", "linked"]
    failed = next(e for e in files if e["outcome"] == "failed")
    assert failed["path"].endswith("broken.wav") and failed["kind"] and failed["message"]
    assert summary["event"] == "summary" and summary["analysed"] == 3 and summary["linked"] == 1

    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert [e["event"] for e in events] == ["started", "summary"]  # nothing to do: no file events
    assert events[0]["unchanged"] == 5


def test_desktop_scan_child_reports_progress_from_the_events(tmp_path):
    from viml.desktop.backend import ScanProcess

    folder = folder_with_work(tmp_path / "music")
    process = ScanProcess(str(folder), tmp_path / "c.sqlite", analyzer=STATS, jobs=1)
    seen: list[tuple[int, int, str]] = []
    summary = process.run(lambda done, total, message: seen.append((done, total, message)), lambda: False)
    assert summary["analysed"] == 3 and summary["failed"]
    counts = [done for done, _, _ in seen]
    assert counts == sorted(counts) and counts[-1] == 5 and {1, 2, 3, 4} <= set(counts)
    assert any("broken.wav" in message and message.startswith("failed") for *_, message in seen)
    assert seen[-1] == (5, 5, "scan finished")
