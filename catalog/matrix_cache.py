"""The stacked segment matrix of a catalog, cached on disk so each query does not rebuild it from SQLite.

Building the ranking input (`Catalog.load_tracks`) means reading every segment row and joining its blob:
for 100,000 segments that costs far more than ranking them. The result is saved next to the catalog
(`<catalog>-matrix/`) as a memory-mapped float32 `.npy` (plus the per-track arrays and info) under a key
made of the catalog's random id, its generation counter (bumped by triggers on every write that ranking
can see, schema v3) and the space. A query first reads the generation; if a cached matrix has that key it
maps the file (no copy), otherwise it loads from SQLite in the same read transaction and writes a new
entry. So a scan's writes invalidate the cache without any writer knowing about it.

Entries are written to a temporary folder and renamed into place (readers never see half an entry);
older generations of a space are removed. No pickle: JSON and .npy/.npz with allow_pickle=False.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from viml.catalog.store import TrackTable

FORMAT = 2  # 2: tracks as Track records
_ARRAYS = ("starts", "counts", "segment_starts")


def cache_root(catalog_path: str | os.PathLike) -> Path:
    path = Path(catalog_path)
    return path.with_name(path.name + "-matrix")


def entry_name(catalog_id: str, generation: int, space: str | None) -> tuple[str, str]:
    """(folder of the space, entry folder name) for one catalog state."""
    space_key = hashlib.sha256((space or "<music>").encode("utf-8")).hexdigest()[:16]
    return space_key, f"{catalog_id}-{generation}-v{FORMAT}"


def load(root: Path, catalog_id: str, generation: int, space: str | None):
    """The cached TrackTable for this exact catalog state, or None (missing, stale or unreadable)."""
    from viml.catalog.store import Track, TrackTable

    space_key, name = entry_name(catalog_id, generation, space)
    folder = root / space_key / name
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        arrays = np.load(folder / "index.npz", allow_pickle=False)
        embeddings = np.load(folder / "embeddings.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if meta.get("space") != space or embeddings.shape[0] != len(arrays["segment_starts"]):
        return None
    try:
        tracks = [Track(**fields) for fields in meta["tracks"]]
    except (KeyError, TypeError):  # written by another version: rebuilt from SQLite
        return None
    return TrackTable(
        paths=meta["paths"],
        hashes=meta["hashes"],
        starts=arrays["starts"],
        counts=arrays["counts"],
        segment_starts=arrays["segment_starts"],
        embeddings=embeddings,
        tracks=tracks,
    )


def save(root: Path, catalog_id: str, generation: int, space: str | None, table: TrackTable) -> bool:
    """Write an entry (best effort: a read-only or full disk only costs speed); True when written."""
    space_key, name = entry_name(catalog_id, generation, space)
    parent = root / space_key
    try:
        parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    except OSError:
        return False
    try:
        np.save(temporary / "embeddings.npy", np.ascontiguousarray(table.embeddings, dtype=np.float32))
        np.savez(temporary / "index.npz", **{key: getattr(table, key) for key in _ARRAYS})
        meta = {
            "space": space,
            "paths": table.paths,
            "hashes": table.hashes,
            "tracks": [asdict(t) for t in table.tracks],
        }
        (temporary / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.rename(temporary, parent / name)  # atomic; fails if another process just wrote the same entry
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        return False
    for old in parent.iterdir():
        # Other generations are stale; a temporary folder an hour old was left by a killed process. A
        # reader may still map an old file: on POSIX it keeps working, elsewhere removal fails quietly.
        with contextlib.suppress(OSError):
            if old.name != name and (not old.name.startswith(".tmp-") or _age(old) > 3600):
                shutil.rmtree(old)
    return True


def _age(path: Path) -> float:
    return time.time() - path.stat().st_mtime
