"""Nonsense on the command line is one line of error, never a traceback and never accepted: NaN, inf, 0 or
negative counts, fractions outside 0..1, an output file in a folder that does not exist (argparse, exit 2);
a bad prompt weight, a full output disk, a full catalog disk (exit 1)."""

from __future__ import annotations

import errno
import os
import shlex
import wave

import numpy as np
import pytest
from viml.catalog import scan as catalog_scan
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, CatalogWriteError
from viml.core.errors import UserFacingError
from viml.search.prompt_terms import parse_prompt

from viml.cli import main

STATS = "viml.demo.stats_analyzer:load"

# Every numeric option of every command, given nonsense. F, M, W, O are placeholders (never read: the
# parser refuses first); "missing/" is a folder that does not exist.
BAD = """
scan F -j 0
scan F -j -3
scan F --watch --interval -1
scan F --interval nan
scan F --interval inf
scan F --interval 0
suggest --prompt x -n -1
suggest --prompt x -n 0
suggest --prompt x --influence nan
suggest --prompt x --influence inf
suggest --prompt x --influence 1.5
suggest --prompt x --influence -0.1
suggest F --in nan
suggest F --out inf
suggest --prompt x --duration nan-5
suggest --prompt x --bpm inf-
suggest --prompt x -o missing/out.json
similar F -n 0
similar F --start -1
similar F -o missing/out.csv
tags --threshold nan
tags --threshold 2
tags --threshold -1
tags -o missing/tags.csv
tag F --threshold nan
tag F --top 0
tag F -j 0
tag F --json missing/tags.json
tag F --csv missing/tags.csv
app --in nan
app --out -1
app --screenshot missing/shot.png
demo --pieces 0
demo --pieces -1
demo --pieces 3
demo --steps 0
demo --seed -1
eval M F --pool 0
eval M F --pool 1
eval M F --window 0
eval M F --json missing/results.json
features W --out O --seed -1
synth F -o O --per-item 0
synth F -o O --threshold nan
synth F -o O --threshold 1.01
synth F -o O --seed -1
synth F -o O --timeout 0
synth F -o O --timeout nan
synth F -o O --retries -1
synth F -o O --rpm 0
synth F -o O --rpm inf
synth F -o missing/texts.jsonl
train F --out O --steps 0
train F --out O --steps -5
train F --out O --batch-size 1
train F --out O --batch-size 0
train F --out O --lr nan
train F --out O --lr 0
train F --out O --lr -1
train F --out O --lr inf
train F --out O --text-dropout 1.5
train F --out O --text-dropout nan
train F --out O --window 0
train F --out O --seed -1
world generate O --pieces 0
world generate O --seed -1
world generate O --seconds nan 5
world generate O --seconds 0 5
world generate O --sample-rate 0
world generate O --workers 0
world generate O --workers -3
"""
BAD_LINES = BAD.strip().splitlines()


@pytest.mark.parametrize("line", BAD_LINES)
def test_nonsense_is_one_argparse_line(line, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        main(shlex.split(line))
    assert exit_status.value.code == 2, line
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert last.startswith("viml ") and ": error: argument " in last, err
    if "missing/" in line:
        assert "no such folder missing" in last


def test_good_values_still_parse():
    from viml.cli import build_parser

    args = build_parser().parse_args(
        ["train", "F", "--out", "O", "--lr", "1e-3", "--text-dropout", "0", "--batch-size", "2"]
    )
    assert (args.lr, args.text_dropout, args.batch_size) == (1e-3, 0.0, 2)
    args = build_parser().parse_args(["scan", "F", "-j", "1", "--interval", "0.5"])
    assert (args.jobs, args.interval) == (1, 0.5)
    args = build_parser().parse_args(["suggest", "--prompt", "x", "--influence", "1", "-o", "out.json"])
    assert (args.influence, args.output) == (1.0, "out.json")


@pytest.mark.parametrize("weight", ["nan", "inf", "0", "-1", "", "9" * 400, "1e5"])
def test_prompt_weight_must_be_a_finite_positive_number(weight, capsys, tmp_path):
    with pytest.raises(UserFacingError, match=r"bad weight in 'piano\^"):
        parse_prompt(f"calm piano^{weight}")
    # The CLI says so before it opens any bundle or catalog (none exist here).
    assert main(["suggest", "--prompt", f"piano^{weight}", "--catalog", str(tmp_path / "none.sqlite")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("viml: error: bad weight in 'piano^")


def test_good_prompt_weights_still_work():
    terms = parse_prompt("soft piano^1.5, -drums^2. strings^.5 sad^3.")
    assert terms.weights() == {"piano": 1.5, "drums": -2.0, "strings": 0.5, "sad": 3.0}


def write_tone(path, seconds: float = 3.0, frequency: float = 440.0, rate: int = 16000) -> None:
    samples = (0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate) * 32767).astype(
        "<i2"
    )
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())


@pytest.fixture
def music(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    for index in range(12):
        write_tone(folder / f"tone{index:02d}.wav", seconds=25.0, frequency=200 + 40 * index)
    return folder


def check_consistent(path, expected_tracks: int | None = None) -> int:
    with Catalog(path) as catalog:
        c = catalog.connection
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("PRAGMA foreign_key_check").fetchall() == []
        # every track has its content and all of that content's segments
        assert not c.execute(
            "SELECT 1 FROM tracks t JOIN contents k ON k.hash = t.hash "
            "WHERE k.segment_count != (SELECT COUNT(*) FROM segments s WHERE s.hash = t.hash)"
        ).fetchall()
        tracks = catalog.counts()["tracks"]
    if expected_tracks is not None:
        assert tracks == expected_tracks
    return tracks


def test_full_catalog_disk_mid_scan_is_one_line_and_loses_nothing(music, tmp_path):
    """SQLite's own limit on the database size gives the very error a full disk does (SQLITE_FULL)."""
    path = tmp_path / "catalog.sqlite"
    with Catalog(path) as catalog:
        pages = catalog.connection.execute("PRAGMA page_count").fetchone()[0]
        catalog.connection.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(CatalogWriteError) as caught:
            scan(catalog, str(music), STATS, jobs=1, progress=False)
    message = str(caught.value)
    assert "database or disk is full" in message and "\n" not in message
    assert "the catalog is unchanged since the last committed file; free space and scan again" in message
    done = check_consistent(path)
    assert 0 < done < 12  # some files were committed whole before the disk filled, none in part
    summary = scan_again(path, music)
    assert summary.analysed == 12 - done
    check_consistent(path, 12)


def scan_again(path, music):
    with Catalog(path) as catalog:
        return scan(catalog, str(music), STATS, jobs=1, progress=False)


def test_os_error_during_a_scan_is_one_line(music, tmp_path, monkeypatch, capsys):
    """ENOSPC outside SQLite (the scan's in-flight marker next to the catalog) says the same."""
    path = tmp_path / "catalog.sqlite"
    calls = []

    def full(self, file_path):
        calls.append(file_path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path + ".new")

    monkeypatch.setattr(catalog_scan._InFlight, "set", full)
    assert main(["scan", str(music), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("viml: error: No space left on device: ")
    assert (
        "the catalog is unchanged since the last committed file; free space and scan again to resume" in err
    )
    assert check_consistent(path) < 12
    monkeypatch.undo()
    assert main(["scan", str(music), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"]) == 0
    check_consistent(path, 12)


def test_output_to_a_full_disk_is_one_line(tmp_path, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with Catalog(tmp_path / "catalog.sqlite"):
        pass
    code = main(["tags", "--catalog", str(tmp_path / "catalog.sqlite"), "-o", "/dev/full"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "No space left on device" in err


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root, with mount rights); skipped elsewhere."""
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
            )
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_really_full_disk_during_a_cli_scan(small_disk, music, tmp_path):
    """The real thing: the catalog's disk fills up under `viml scan`; freeing space and scanning again
    completes the catalog."""
    import subprocess
    import sys

    path = small_disk / "catalog.sqlite"
    Catalog(path).close()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free - 48 * 1024))
    command = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())", "scan",
               str(music), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"]  # fmt: skip
    env = {**os.environ, "VIML_HOME": str(tmp_path / "home")}
    full = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert full.stderr.count("\n") == 1 and full.stderr.startswith("viml: error: "), full.stderr
    assert "free space and scan again to resume" in full.stderr
    filler.unlink()
    check_consistent(path)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    check_consistent(path, 12)


def test_creating_a_catalog_on_a_full_disk(small_disk, music, capsys):
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * free)
    path = small_disk / "catalog.sqlite"
    assert main(["scan", str(music), "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"viml: error: cannot write the catalog {path}: "), err
    assert "free space" in err and "scan again to resume" in err
