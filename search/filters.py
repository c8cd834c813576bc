"""Which catalogued tracks a search may return (length, genre, BPM, vocals, folder, exclusions).

BPM: a file's BPM tag when it has one, otherwise the tempo the rhythm analysis measured (confidence at
least MEASURED_TEMPO_CONFIDENCE). A measured tempo also matches at half and double time: a beat tracker
may lock to either level of the beat, and a 70 BPM ballad and a 140 BPM half-time groove share a pulse.

Vocals: from the taggers' segment probabilities (no file tag says it). A segment is sung when its
strongest voice tag (the tag table's vocals, female vocals, male vocals and choir concepts) counts as a
tag (>= TAG_THRESHOLD, engine/tags.py) and beats its strongest "no vocals" tag (the instrumental
concept: MTT "no vocals"/"no voice", MSD "instrumental"). A track has vocals when at least VOCAL_SHARE
of its segments are sung; every other track is instrumental, so the two filters split the library.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.tags import TAG_THRESHOLD

if TYPE_CHECKING:
    from viml.catalog.store import Catalog, TrackTable


MEASURED_TEMPO_CONFIDENCE = 0.2
VOCAL_SHARE = 0.25  # a quarter of a track sung: a song with an instrumental intro and outro still counts

# Tag probabilities [N, T] aligned with a table's segments and their 'VOCABULARY:tag' names.
TagMatrix = Callable[[], tuple[np.ndarray, list[str]]]


def tempo_in_range(tempo: float, low: float | None, high: float | None, octaves: bool) -> bool:
    """Whether `tempo` (or, with `octaves`, half or double it) lies in [low, high]."""
    candidates = (tempo, tempo * 2.0, tempo / 2.0) if octaves else (tempo,)
    return any((low is None or t >= low) and (high is None or t <= high) for t in candidates)


def sung_share(tags: np.ndarray, names: list[str], starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """float [T]: the share of each track's segments that are sung (the module docstring), from tag
    probabilities [N, T] over segments (track t's rows: starts[t] : starts[t] + counts[t])."""
    from viml.search.prompt_terms import ANY_VOCALS, concept_columns

    columns = concept_columns(names)
    voices = columns.get(ANY_VOCALS)
    if not voices:
        raise UserFacingError("the catalog's taggers have no vocals tags: the vocals filter cannot apply")
    tags = np.asarray(tags, np.float32)
    voice = tags[:, voices].max(axis=1)
    silent = columns.get("instrumental")
    none = tags[:, silent].max(axis=1) if silent else np.zeros(len(tags), np.float32)
    sung = ((voice >= TAG_THRESHOLD) & (voice > none)).astype(np.float64)
    if not len(counts):
        return np.zeros(0)
    return np.add.reduceat(sung, np.asarray(starts, np.int64)) / np.maximum(counts, 1)


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
    vocals: bool | None = None  # True: tracks with vocals only; False: instrumental only (docstring)

    def __post_init__(self) -> None:
        for name in ("min_duration", "max_duration", "min_bpm", "max_bpm"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise UserFacingError(f"filter {name.replace('_', ' ')} must be a number >= 0, got {value}")

    def keep(self, table: TrackTable, catalog: Catalog, tags: TagMatrix | None = None) -> np.ndarray | None:
        """Boolean mask over the table's tracks, or None when nothing is filtered. `tags` gives the
        segments' tag probabilities (a searcher's cached matrix; default: read from the catalog)."""
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
        if self.min_bpm is not None or self.max_bpm is not None:
            measured = catalog.measured_tempos()

            def bpm_matches(i: int) -> bool:
                if tracks[i].bpm:
                    return tempo_in_range(tracks[i].bpm, self.min_bpm, self.max_bpm, octaves=False)
                tempo, confidence = measured.get(table.hashes[i], (None, 0.0))
                return (
                    tempo is not None
                    and confidence >= MEASURED_TEMPO_CONFIDENCE
                    and tempo_in_range(tempo, self.min_bpm, self.max_bpm, octaves=True)
                )

            checks.append(bpm_matches)
        if self.folder:
            prefix = path_key(os.path.abspath(self.folder)).rstrip("/") + "/"
            checks.append(lambda i: table.paths[i].startswith(prefix))
        excluded = {path_key(os.path.abspath(p)) for p in self.exclude}
        if self.exclude_used:
            excluded |= catalog.used_paths()
        if excluded:
            checks.append(lambda i: table.paths[i] not in excluded)
        if self.vocals is not None:
            matrix, names = (
                tags() if tags is not None else (catalog.segment_tag_matrix(table), catalog.tag_names())
            )
            sung = sung_share(matrix, names, table.starts, table.counts) >= VOCAL_SHARE
            checks.append(lambda i: bool(sung[i]) == self.vocals)
        if not checks:
            return None
        return np.array([all(check(i) for check in checks) for i in range(len(table.paths))], dtype=bool)
