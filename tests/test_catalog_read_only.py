"""A catalog on a read-only disk or share can be searched and exported (searching needs no write access);
writing to it is one clear line; an old schema there is refused rather than migrated.

The catalog folder is made genuinely read-only: a read-only bind mount as root (chmod means nothing to
root), plain permissions otherwise."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_bad_input import write_tone
from viml.catalog.scan import scan
from viml.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from viml.catalog.store import Catalog, CatalogWriteError
from viml.core.errors import UserFacingError

from viml.cli import main

STATS = "viml.demo.stats_analyzer:load"


@contextlib.contextmanager
def read_only_view(folder: Path, tmp_path: Path) -> Iterator[Path]:
    """`folder` as a folder this process cannot write (same files)."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    view = tmp_path / "read-only-view"
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True).returncode == 0
    if not bound:
        pytest.skip("root without mount rights: cannot make a folder read-only for root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        assert not os.access(view, os.W_OK)
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=True)


@pytest.fixture
def catalogued(tmp_path) -> tuple[Path, list[str]]:
    """A catalog of three tracks, in a folder of its own (closed: no -wal or -shm left)."""
    music = tmp_path / "music"
    music.mkdir()
    for index in range(3):
        write_tone(music / f"tone{index}.wav", seconds=12.0, frequency=220 * (index + 1))
    folder = tmp_path / "catalog"
    folder.mkdir()
    with Catalog(folder / "catalog.sqlite") as catalog:
        scan(catalog, str(music), STATS, jobs=1, progress=False)
        paths = [track.path for track in catalog.tracks()]
    assert len(paths) == 3 and sorted(os.listdir(folder)) == ["catalog.sqlite", "catalog.sqlite-scan.lock"]
    return folder, paths


def test_search_and_export_a_read_only_catalog(catalogued, tmp_path, capsys):
    folder, paths = catalogued
    with read_only_view(folder, tmp_path) as view:
        path = view / "catalog.sqlite"
        with Catalog(path, must_exist=True) as catalog:
            assert catalog.read_only
            assert [track.path for track in catalog.tracks()] == paths
            assert catalog.load_tracks(cache=True).paths == paths  # the matrix cache cannot be written: fine
        assert main(["tags", "--catalog", str(path), "--format", "json"]) == 0
        assert [row["path"] for row in json.loads(capsys.readouterr().out)] == paths
        assert main(["similar", paths[0], "--catalog", str(path), "--format", "json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert {t["path"] for t in found["tracks"]} == set(paths[1:])


def test_writing_a_read_only_catalog_is_one_line(catalogued, tmp_path, capsys):
    folder, paths = catalogued
    with read_only_view(folder, tmp_path) as view:
        path = view / "catalog.sqlite"
        music = str(Path(paths[0]).parent)
        assert main(["scan", music, "--catalog", str(path), "--analyzer", STATS, "-q", "-j", "1"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"viml: error: the catalog {path} is read-only")
        with Catalog(path) as catalog:  # opened for reading; a write is refused in one line
            with pytest.raises(CatalogWriteError, match="readonly database; it is read-only"):
                catalog.mark_used([paths[0]])
            assert [track.path for track in catalog.tracks()] == paths


def test_an_old_schema_on_a_read_only_disk_is_refused(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    connection = sqlite3.connect(folder / "catalog.sqlite")
    for statement in MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    refused = f"schema version 1, older than this ViML's \\({SCHEMA_VERSION}\\)"
    with read_only_view(folder, tmp_path) as view, pytest.raises(UserFacingError, match=refused):
        Catalog(view / "catalog.sqlite")
    with Catalog(folder / "catalog.sqlite") as catalog:  # writable: upgraded in place, as before
        assert catalog.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_read_only_reader_sees_a_live_writer(catalogued, tmp_path):
    """With a writer at work (-wal and -shm next to the catalog), the reader reads through them, latest
    commits included."""
    folder, paths = catalogued
    with Catalog(folder / "catalog.sqlite") as writer:
        writer.connection.execute("PRAGMA wal_autocheckpoint = 0")
        writer.remove_paths([paths[0]])
        assert (folder / "catalog.sqlite-wal").exists()
        with read_only_view(folder, tmp_path) as view, Catalog(view / "catalog.sqlite") as reader:
            assert reader.read_only
            assert [track.path for track in reader.tracks()] == paths[1:]
            writer.remove_paths([paths[1]])
            assert [track.path for track in reader.tracks()] == paths[2:]


def test_read_only_on_request(catalogued):
    folder, paths = catalogued
    with Catalog(folder / "catalog.sqlite", read_only=True) as catalog:
        assert catalog.read_only and [track.path for track in catalog.tracks()] == paths
        with pytest.raises(CatalogWriteError, match="read-only"):
            catalog.mark_used([paths[0]])
    with pytest.raises(UserFacingError, match="no catalog at"):
        Catalog(folder / "missing.sqlite", read_only=True)
    assert not (folder / "missing.sqlite").exists()
    with Catalog(folder / "catalog.sqlite") as catalog:  # writable: opened for writing, as before
        assert not catalog.read_only
        catalog.mark_used([paths[0]])


def test_a_library_scan_into_an_unwritable_folder_says_so_in_one_line(tmp_path, monkeypatch):
    """Not only the CLI: the scan itself (the desktop calls it in a child, others as a library)."""
    import os

    import pytest
    from viml.catalog.store import scan_lock
    from viml.core.errors import UserFacingError

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(UserFacingError, match="folder is not writable"), scan_lock(tmp_path / "c.sqlite"):
        pass
