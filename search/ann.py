"""An approximate nearest-neighbour index of a space's segment embeddings, for libraries of millions of
segments: it finds the candidate tracks, and the exact window scoring (search/ranking.py) then runs on
those tracks only (search/candidates.py).

The index is usearch's HNSW graph (float16 vectors, cosine), chosen by measurement against faiss-cpu and
hnswlib (bench/big_search.py --libraries, 100,000 segments, recall of the 200 nearest): float16 kept
the recall of float32 (0.979) at half the memory, int8 lost it (0.875); faiss's HNSW + SQ8 was faster and
smaller (0.9 ms, 50 MB, recall 0.974) but its HNSW cannot remove vectors, which the incremental updates
need; hnswlib (float32 only) matched the recall at the memory of float32. It lives next to the catalog,
one per retrieval space:

    <catalog>.ann/<space key>/<catalog id>-<generation>/{index.usearch, contents.json}

- Keyed by content, not by file: key = content number << 20 | segment index, so duplicate files share
  vectors and a moved file costs nothing; `contents.json` maps each content hash to its number, segment
  count and a checksum of its vectors (a content analysed again under another spec has other vectors).
- Verified against the catalog before every use: an entry of the catalog's current state is used as it
  is; otherwise the newest entry of the same catalog is brought up to date with the table (contents added,
  contents gone or changed removed: a rescan that adds 100 tracks adds their vectors, it does not rebuild),
  and one that cannot be read or does not match is rebuilt, never trusted.
- Written to a temporary folder and renamed into place: a reader never sees half an index; older entries
  are removed after the new one is in place. No pickle: JSON plus usearch's own file format.
usearch is imported only here, only when a library is big enough to use the index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from viml.catalog.store import TrackTable

FORMAT = 2  # 2: float16 vectors
SEGMENT_BITS = 20  # up to 1,048,576 segments per content (a 120-day file at 10 s segments)
# HNSW parameters, measured in bench/big_search.py (recall@50 of the candidate tracks ≥ 0.98 at 1 M).
CONNECTIVITY = 16
EXPANSION_ADD = 128
# A rebuild compacts the graph once this share of its vectors were removed (usearch marks them deleted).
REBUILD_REMOVED = 0.3
ADD_BLOCK = 100_000  # vectors copied and added at a time


def index_root(catalog_path: str | os.PathLike) -> Path:
    path = Path(catalog_path)
    return path.with_name(path.name + ".ann")


def available() -> bool:
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Contents:
    """What the index holds: content hash -> (number, segment count, checksum), and the next number."""

    entries: dict[str, tuple[int, int, float]]
    next_number: int = 0
    removed: int = 0  # vectors removed since the last build


def table_contents(table: TrackTable) -> dict[str, tuple[int, int, float]]:
    """content hash -> (first row in the table, segment count, checksum of its vectors)."""
    checksums = _checksums(table)
    found: dict[str, tuple[int, int, float]] = {}
    for index, content_hash in enumerate(table.hashes):
        if content_hash not in found:
            found[content_hash] = (
                int(table.starts[index]),
                int(table.counts[index]),
                float(checksums[index]),
            )
    return found


def _checksums(table: TrackTable) -> np.ndarray:
    """Per track: the sum of its vectors projected on a fixed random direction (cheap: one pass)."""
    if len(table.counts) == 0:
        return np.zeros(0)
    probe = np.random.default_rng(0).standard_normal(table.embeddings.shape[1]).astype(np.float32)
    projected = np.asarray(table.embeddings @ probe, dtype=np.float64)
    return np.add.reduceat(projected, table.starts)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * (1.0 + abs(a))  # BLAS sums vary in the last bits with the row position


class SegmentIndex:
    """The usearch index of one space with its contents map; `open` gives one that matches the table."""

    def __init__(self, index: Any, contents: Contents, dim: int) -> None:
        self.index = index
        self.contents = contents
        self.dim = dim
        self._hash_of: dict[int, str] = {number: h for h, (number, _, _) in contents.entries.items()}

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def open(
        cls,
        catalog_path: str | os.PathLike,
        state: tuple[str, int],
        space: str | None,
        table: TrackTable,
        threads: int = 0,
        build: bool = True,
    ) -> tuple[SegmentIndex | None, str]:
        """The index for this catalog state (loaded, updated or built) and how it was had: "loaded",
        "updated (...)" with its added/removed counts, or "built". With `build` False (a query: a build
        takes minutes at a million segments, `viml scan` does it) an index that would need a full build
        is None ("missing")."""
        catalog_id, generation = state
        folder = index_root(catalog_path) / _space_key(space)
        name = f"{catalog_id}-{generation}-v{FORMAT}"
        wanted = table_contents(table)
        dim = int(table.embeddings.shape[1])
        exact = _load(folder / name, space, dim)
        if exact is not None and _matches(exact.contents, wanted):
            return exact, "loaded"
        for older in _entries(folder, catalog_id):
            if older.name == name:
                continue
            found = _load(older, space, dim)
            if found is None:
                continue
            how = found._update(table, wanted, threads)
            if how is not None:
                found._save(folder, name, space)
                return found, how
            break  # the newest readable entry needs a rebuild: older ones would too
        if not build:
            return None, "missing"
        built = cls.build(table, wanted, threads)
        built._save(folder, name, space)
        return built, "built"

    @classmethod
    def build(
        cls, table: TrackTable, wanted: dict[str, tuple[int, int, float]] | None = None, threads: int = 0
    ) -> SegmentIndex:
        wanted = wanted if wanted is not None else table_contents(table)
        dim = int(table.embeddings.shape[1])
        index = new_index(dim)
        made = cls(index, Contents({}), dim)
        made._add(table, wanted, threads)
        return made

    def _update(
        self, table: TrackTable, wanted: dict[str, tuple[int, int, float]], threads: int
    ) -> str | None:
        """Bring the index to `wanted`; None when a rebuild is due (too much of it removed)."""
        held = self.contents.entries
        gone = [h for h, (_, count, checksum) in held.items()
                if h not in wanted or wanted[h][1] != count or not _same(wanted[h][2], checksum)]  # fmt: skip
        removed = sum(held[h][1] for h in gone)
        if self.contents.removed + removed > REBUILD_REMOVED * max(
            1, len(self.index) + self.contents.removed
        ):
            return None
        for content_hash in gone:
            number, count, _ = held.pop(content_hash)
            self.index.remove(_keys(number, count))
            self._hash_of.pop(number, None)
        self.contents.removed += removed
        added = {h: v for h, v in wanted.items() if h not in held}
        self._add(table, added, threads)
        return f"updated (+{len(added)} contents, -{len(gone)})"

    def _add(self, table: TrackTable, contents: dict[str, tuple[int, int, float]], threads: int) -> None:
        if not contents:
            return
        keys, rows = [], []
        for content_hash, (first, count, checksum) in contents.items():
            number = self.contents.next_number
            self.contents.next_number += 1
            self.contents.entries[content_hash] = (number, count, checksum)
            self._hash_of[number] = content_hash
            keys.append(_keys(number, count))
            rows.append(np.arange(first, first + count))
        all_keys, all_rows = np.concatenate(keys), np.concatenate(rows)
        # In blocks: a copy of every vector at once would be 7.7 GB more memory at 5 M segments.
        for lo in range(0, len(all_rows), ADD_BLOCK):
            block = all_rows[lo : lo + ADD_BLOCK]
            vectors = np.ascontiguousarray(table.embeddings[block], dtype=np.float32)
            self.index.add(all_keys[lo : lo + ADD_BLOCK], vectors, threads=threads)

    def search(
        self, rows: np.ndarray, count: int, expansion: int, threads: int = 0
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """For each query row its `count` nearest segments: (hash of every content number, numbers [R, C]
        (-1: none), similarities [R, C])."""
        self.index.expansion_search = max(expansion, count)
        rows = np.atleast_2d(np.ascontiguousarray(rows, dtype=np.float32))
        matches = self.index.search(rows, count, threads=threads)
        keys = np.atleast_2d(np.asarray(matches.keys)).astype(np.int64)
        distances = np.atleast_2d(np.asarray(matches.distances, dtype=np.float32))
        # One row gives Matches (only what was found), several give BatchMatches (padded, with counts).
        found_counts = np.atleast_1d(np.asarray(getattr(matches, "counts", keys.shape[1])))
        found = np.arange(keys.shape[1])[None, :] < found_counts[:, None]
        numbers = np.where(found, keys >> SEGMENT_BITS, -1)
        similarities = np.where(found, 1.0 - distances, -np.inf)  # usearch's cos distance is 1 - cosine
        return (
            [self._hash_of.get(int(n), "") for n in np.unique(numbers[numbers >= 0])],
            numbers,
            similarities,
        )

    def hash_of(self, number: int) -> str | None:
        return self._hash_of.get(number)

    def _save(self, folder: Path, name: str, space: str | None) -> bool:
        """Write the entry atomically (best effort: a read-only disk only costs a rebuild next time)."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        except OSError:
            return False
        try:
            self.index.save(str(temporary / "index.usearch"))
            meta = {
                "format": FORMAT,
                "space": space,
                "dim": self.dim,
                "next_number": self.contents.next_number,
                "removed": self.contents.removed,
                "vectors": len(self.index),
                "contents": self.contents.entries,
            }
            (temporary / "contents.json").write_text(json.dumps(meta), encoding="utf-8")
            os.rename(temporary, folder / name)
        except OSError:
            shutil.rmtree(temporary, ignore_errors=True)
            return False
        for old in folder.iterdir():
            with contextlib.suppress(OSError):
                if old.name != name and (not old.name.startswith(".tmp-") or _age(old) > 3600):
                    shutil.rmtree(old)
        return True


def new_index(dim: int) -> Any:
    from usearch.index import Index

    return Index(ndim=dim, metric="cos", dtype="f16", connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD)


def _keys(number: int, count: int) -> np.ndarray:
    return (np.uint64(number) << np.uint64(SEGMENT_BITS)) + np.arange(count, dtype=np.uint64)


def _space_key(space: str | None) -> str:
    return hashlib.sha256((space or "<music>").encode("utf-8")).hexdigest()[:16]


def _entries(folder: Path, catalog_id: str) -> list[Path]:
    """This catalog's entries, newest generation first."""
    found = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            parts = entry.name.rsplit("-", 2)
            if len(parts) == 3 and parts[0] == catalog_id and parts[1].isdigit() and parts[2] == f"v{FORMAT}":
                found.append((int(parts[1]), entry))
    return [entry for _, entry in sorted(found, reverse=True)]


def _load(folder: Path, space: str | None, dim: int) -> SegmentIndex | None:
    """An entry as stored, or None when it cannot be read or does not describe itself consistently."""
    from usearch.index import Index

    try:
        meta = json.loads((folder / "contents.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("space") != space or meta.get("dim") != dim:
            return None
        index = Index.restore(str(folder / "index.usearch"))
        entries = {h: (int(n), int(c), float(s)) for h, (n, c, s) in meta["contents"].items()}
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    if index is None or index.ndim != dim or len(index) != meta.get("vectors"):
        return None
    if len(index) != sum(count for _, count, _ in entries.values()):
        return None  # not what its map says: a torn or foreign file
    return SegmentIndex(index, Contents(entries, int(meta["next_number"]), int(meta["removed"])), dim)


def _matches(contents: Contents, wanted: dict[str, tuple[int, int, float]]) -> bool:
    held = contents.entries
    if held.keys() != wanted.keys():
        return False
    return all(
        held[h][1] == count and _same(held[h][2], checksum) for h, (_, count, checksum) in wanted.items()
    )


def _age(path: Path) -> float:
    return time.time() - path.stat().st_mtime
