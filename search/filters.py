"""Which catalogued tracks a search may return (length, genre, BPM, folder, exclusions)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from viml.core.errors import UserFacingError

if TYPE_CHECKING:
    from viml.catalog.store import Catalog, TrackTable


@dataclass
class Filters:
    min_duration: float | None = None
    max_duration: float | None = None
    genre: str | None = None  # case-insensitive substring of the file's genre tag
    min_bpm: float | None = None
    max_bpm: float | None = None
    folder: str | None = None  # only tracks under this folder
    exclude: set[str] = field(default_factory=set)  # paths to leave out
    exclude_used: bool = False

    def __post_init__(self) -> None:
        for name in ("min_duration", "max_duration", "min_bpm", "max_bpm"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise UserFacingError(f"filter {name.replace('_', ' ')} must be a number >= 0, got {value}")

    def keep(self, table: TrackTable, catalog: Catalog) -> np.ndarray | None:
        """Boolean mask over the table's tracks, or None when nothing is filtered."""
        from viml.catalog.store import path_key

        checks = []
        tracks = table.tracks
        if self.min_duration is not None:
            checks.append(lambda i: (tracks[i].duration or 0) >= self.min_duration)
        if self.max_duration is not None:
            checks.append(lambda i: (tracks[i].duration or 0) <= self.max_duration)
        if self.genre:
            wanted = self.genre.lower()
            checks.append(lambda i: wanted in (tracks[i].genre or "").lower())
        if self.min_bpm is not None:
            checks.append(lambda i: tracks[i].bpm is not None and tracks[i].bpm >= self.min_bpm)
        if self.max_bpm is not None:
            checks.append(lambda i: tracks[i].bpm is not None and tracks[i].bpm <= self.max_bpm)
        if self.folder:
            prefix = path_key(os.path.abspath(self.folder)).rstrip("/") + "/"
            checks.append(lambda i: table.paths[i].startswith(prefix))
        excluded = {path_key(os.path.abspath(p)) for p in self.exclude}
        if self.exclude_used:
            excluded |= catalog.used_paths()
        if excluded:
            checks.append(lambda i: table.paths[i] not in excluded)
        if not checks:
            return None
        return np.array([all(check(i) for check in checks) for i in range(len(table.paths))], dtype=bool)
