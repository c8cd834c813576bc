"""The cached segment matrix: served only for the exact catalog state it was built from."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
from test_catalog_scan import STATS, write_wav
from viml.catalog import matrix_cache
from viml.catalog.scan import scan
from viml.catalog.store import Catalog


def same_table(a, b) -> bool:
    return (
        a.paths == b.paths
        and a.hashes == b.hashes
        and a.tracks == b.tracks
        and np.array_equal(a.starts, b.starts)
        and np.array_equal(a.counts, b.counts)
        and np.array_equal(a.segment_starts, b.segment_starts)
        and np.array_equal(a.embeddings, b.embeddings)
    )


def check(catalog, space=None, expect_cached: bool | None = None):
    """Load through the cache and straight from SQLite: they must always agree."""
    cached = catalog.load_tracks(space)
    if expect_cached is not None:
        assert isinstance(cached.embeddings, np.memmap) == expect_cached
    assert same_table(cached, catalog.load_tracks(space, cache=False))
    return cached


def test_cache_follows_every_write(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    for i in range(3):
        write_wav(folder / f"t{i}.wav", 12 + i, seed=i)
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog, Catalog(path) as reader:  # the reader stays open, like the desktop
        scan(catalog, folder, STATS, jobs=1, progress=False)
        check(reader, expect_cached=False)  # first load builds the entry
        assert len(check(reader, expect_cached=True).paths) == 3

        write_wav(folder / "new.wav", 11, seed=9)  # a scan that adds a file
        scan(catalog, folder, STATS, jobs=1, progress=False)
        assert len(check(reader, expect_cached=False).paths) == 4

        generation = reader.state()[1]
        os.utime(folder / "t0.wav", ns=(1, 1_000_000_000))  # touched, same content: nothing to rebuild
        assert scan(catalog, folder, STATS, jobs=1, progress=False).touched == 1
        assert reader.state()[1] == generation
        check(reader, expect_cached=True)

        os.rename(folder / "t1.wav", folder / "moved.wav")  # a move changes the paths
        scan(catalog, folder, STATS, jobs=1, progress=False)
        assert "moved.wav" in {os.path.basename(p) for p in check(reader, expect_cached=False).paths}

        (folder / "t2.wav").unlink()
        scan(catalog, folder, STATS, jobs=1, progress=False)
        assert len(check(reader, expect_cached=False).paths) == 3

        # A retrieval space of its own entry; rewriting one track's embeddings invalidates it.
        table = check(reader)
        for content_hash, count in zip(table.hashes, table.counts, strict=True):
            catalog.write_retrieval("space-a", content_hash, np.ones((int(count), 4), np.float32))
        check(reader, "space-a", expect_cached=False)
        check(reader, "space-a", expect_cached=True)
        catalog.write_retrieval("space-a", table.hashes[0], np.full((int(table.counts[0]), 4), 2, np.float32))
        changed = check(reader, "space-a", expect_cached=False)
        assert changed.embeddings[0, 0] == 2

        # A write from any other connection (another process, a future writer) is seen the same way.
        with sqlite3.connect(path) as other:
            other.execute("UPDATE tracks SET title = 'retitled' WHERE path = ?", (table.paths[0],))
        assert check(reader, expect_cached=False).tracks[0].title == "retitled"


def test_a_new_catalog_at_the_same_path_never_gets_the_old_matrix(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    write_wav(folder / "a.wav", 12, seed=1)
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        scan(catalog, folder, STATS, jobs=1, progress=False)
        old = check(catalog)
        old_state = catalog.state()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.unlink(f"{path}{suffix}")
    (folder / "a.wav").unlink()
    write_wav(folder / "b.wav", 12, seed=2)  # same number of writes, so the same generation
    with Catalog(path) as catalog:
        scan(catalog, folder, STATS, jobs=1, progress=False)
        assert catalog.state()[1] == old_state[1] and catalog.state()[0] != old_state[0]
        new = check(catalog, expect_cached=False)
    assert new.paths != old.paths


def test_a_damaged_cache_entry_falls_back_to_sqlite(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    write_wav(folder / "a.wav", 25, seed=1)
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        scan(catalog, folder, STATS, jobs=1, progress=False)
        check(catalog, expect_cached=False)
        entries = list(matrix_cache.cache_root(path).glob("*/*/embeddings.npy"))
        assert len(entries) == 1
        entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncated by a crash or a full disk
        check(catalog, expect_cached=False)
        entries[0].parent.joinpath("meta.json").write_text("{not json")
        check(catalog, expect_cached=False)


def test_only_the_current_generation_is_kept(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        for i in range(3):
            write_wav(folder / f"t{i}.wav", 11, seed=i)
            scan(catalog, folder, STATS, jobs=1, progress=False)
            check(catalog)
    entries = [p for p in matrix_cache.cache_root(path).glob("*/*") if not p.name.startswith(".tmp-")]
    assert len(entries) == 1
