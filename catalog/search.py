"""Suggestions for a clip/prompt and tracks similar to a reference: the API the CLI and desktop share."""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from viml.catalog.prompt_terms import PromptTerms, segment_tag_matrix
from viml.catalog.ranking import normalize_rows, top_tracks, window_scores
from viml.catalog.retrieval import DEFAULT_TAG_THRESHOLD
from viml.catalog.store import Catalog, TrackTable, path_key
from viml.engine.segments import DEFAULT_SEGMENT_SECONDS

from viml.errors import UserFacingError

MATCHED_TAGS = 5


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

    def keep(self, table: TrackTable, catalog: Catalog) -> np.ndarray | None:
        """Boolean mask over the table's tracks, or None when nothing is filtered."""
        checks = []
        info = table.info
        if self.min_duration is not None:
            checks.append(lambda i: (info[i]["duration"] or 0) >= self.min_duration)
        if self.max_duration is not None:
            checks.append(lambda i: (info[i]["duration"] or 0) <= self.max_duration)
        if self.genre:
            wanted = self.genre.lower()
            checks.append(lambda i: wanted in (info[i]["genre"] or "").lower())
        if self.min_bpm is not None:
            checks.append(lambda i: info[i]["bpm"] is not None and info[i]["bpm"] >= self.min_bpm)
        if self.max_bpm is not None:
            checks.append(lambda i: info[i]["bpm"] is not None and info[i]["bpm"] <= self.max_bpm)
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


@dataclass
class Suggestion:
    rank: int
    path: str
    score: float
    start: float  # best start offset in the track, seconds
    end: float  # start + clip length, capped at the track's end
    matched_tags: list[dict]
    curve: list[float]  # window score at each offset (offsets are segment_seconds apart)
    segment_seconds: float
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    bpm: float | None
    duration: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def suggest(
    catalog: Catalog,
    space_id: str | None,
    query: np.ndarray | None,
    clip_seconds: float | None = None,
    prompt: str | None = None,
    filters: Filters | None = None,
    top: int = 10,
    table: TrackTable | None = None,
    terms: PromptTerms | None = None,
    tags: np.ndarray | None = None,
    mention_weight: float = 0.0,
) -> list[Suggestion]:
    """Rank catalogued tracks for query rows [K, D] in retrieval space `space_id` (None: music embeddings).

    `terms` (catalog/prompt_terms.py) add the prompt's concept weights and negations through each
    segment's tag probabilities (`tags` [N, T] aligned with the table, loaded when not given); `query`
    may then be None when the prompt is nothing but terms ("no vocals").
    """
    table = table if table is not None else catalog.load_tracks(space_id)
    if not table.paths:
        raise UserFacingError("the catalog has no tracks for this model yet; run `viml scan FOLDER` first")
    bias = None
    if terms is not None and terms.has_terms(mention_weight):
        tags = tags if tags is not None else segment_tag_matrix(catalog, table)
        bias = terms.segment_bias(tags, catalog.tag_names(), mention_weight)
    if query is None:
        if bias is None:
            raise UserFacingError("the prompt has nothing to search for")
        query = np.zeros((1, table.embeddings.shape[1]), np.float32)
    query = normalize_rows(np.atleast_2d(query))
    if query.shape[1] != table.embeddings.shape[1]:
        raise UserFacingError(
            f"the query has {query.shape[1]} dimensions but the catalog's embeddings have "
            f"{table.embeddings.shape[1]}: was the catalog embedded with another bundle?"
        )
    scores = window_scores(table.embeddings, table.starts, table.counts, query, bias)
    keep = (filters or Filters()).keep(table, catalog)
    chosen = top_tracks(scores.best, keep, top)
    length = clip_seconds if clip_seconds is not None else DEFAULT_SEGMENT_SECONDS * query.shape[0]
    return [
        _suggestion(catalog, table, scores, index, rank, length, query.shape[0], prompt)
        for rank, index in enumerate(chosen, 1)
    ]


def _suggestion(
    catalog, table, scores, index: int, rank: int, length: float, k: int, prompt: str | None
) -> Suggestion:
    start_row = int(table.starts[index])
    offset = int(scores.best_offset[index])
    curve = scores.scores[start_row : start_row + int(scores.offsets[index])]
    start = float(table.segment_starts[start_row + offset])
    info = table.info[index]
    duration = info["duration"]
    last = min(offset + k, int(table.counts[index])) - 1
    return Suggestion(
        rank=rank,
        path=table.paths[index],
        score=round(float(scores.best[index]), 6),
        start=start,
        end=min(start + length, duration) if duration else start + length,
        matched_tags=matched_tags(catalog, table.hashes[index], offset, last, prompt),
        curve=[round(float(v), 5) for v in curve],
        segment_seconds=DEFAULT_SEGMENT_SECONDS,
        title=info["title"],
        artist=info["artist"],
        album=info["album"],
        genre=info["genre"],
        bpm=info["bpm"],
        duration=duration,
    )


def matched_tags(
    catalog: Catalog,
    content_hash: str,
    first: int,
    last: int,
    prompt: str | None,
    threshold: float = DEFAULT_TAG_THRESHOLD,
) -> list[dict]:
    """Tags above threshold over the best window; tags the prompt mentions come first."""
    names = catalog.tag_names()
    if not names:
        return []
    probabilities = catalog.segment_tags(content_hash, first, last).mean(axis=0)
    words = set(re.findall(r"[a-z0-9]+", prompt.lower())) if prompt else set()
    found: dict[str, dict] = {}
    for name, probability in zip(names, probabilities, strict=True):
        tag = name.split(":", 1)[1]
        if probability < threshold or probability <= found.get(tag.lower(), {}).get("probability", 0):
            continue
        in_prompt = bool(words) and set(re.findall(r"[a-z0-9]+", tag.lower())) <= words
        found[tag.lower()] = {"tag": tag, "probability": round(float(probability), 4), "in_prompt": in_prompt}
    ranked = sorted(found.values(), key=lambda t: (not t["in_prompt"], -t["probability"]))
    return ranked[:MATCHED_TAGS]


@dataclass
class SegmentHit:
    path: str
    start: float
    score: float


def similar(
    catalog: Catalog,
    reference: str,
    start: float | None = None,
    end: float | None = None,
    filters: Filters | None = None,
    top: int = 10,
) -> tuple[list[Suggestion], list[SegmentHit]]:
    """Tracks and single segments most like a reference track (or a part of it), in music-model space.

    The catalog's mean embedding is subtracted first: music-model features share a large common
    component, and without centring every track looks alike (cosines all near 1).
    """
    table = catalog.load_tracks(None)
    key = path_key(os.path.abspath(reference))
    if key not in table.paths:
        raise UserFacingError(f"{reference} is not in the catalog; scan its folder first")
    index = table.paths.index(key)
    rows = slice(int(table.starts[index]), int(table.starts[index] + table.counts[index]))
    centred = normalize_rows(table.embeddings - table.embeddings.mean(axis=0))
    times = table.segment_starts[rows]
    chosen = np.ones(len(times), bool)
    if start is not None:
        chosen &= times + DEFAULT_SEGMENT_SECONDS > start
    if end is not None:
        chosen &= times < end
    if not chosen.any():
        raise UserFacingError(f"{reference} has no segment between {start} and {end} s")
    reference_rows = centred[rows][chosen]
    # A part of the track is matched as a sequence; the whole track as its average sound.
    query = (
        reference_rows
        if (start is not None or end is not None)
        else reference_rows.mean(axis=0, keepdims=True)
    )
    filters = filters or Filters()
    filters.exclude = set(filters.exclude)
    same = {table.paths[i] for i, h in enumerate(table.hashes) if h == table.hashes[index]}
    centred_table = TrackTable(
        table.paths, table.hashes, table.starts, table.counts, table.segment_starts, centred, table.info
    )
    keep = filters.keep(table, catalog)
    keep = np.array([p not in same for p in table.paths]) & (keep if keep is not None else True)
    query = normalize_rows(query)
    scores = window_scores(centred, table.starts, table.counts, query)
    chosen_tracks = top_tracks(scores.best, keep, top)
    length = (
        (float(times[chosen][-1]) - float(times[chosen][0]) + DEFAULT_SEGMENT_SECONDS)
        if query.shape[0] > 1
        else DEFAULT_SEGMENT_SECONDS
    )
    tracks = [
        _suggestion(catalog, centred_table, scores, i, r, length, query.shape[0], None)
        for r, i in enumerate(chosen_tracks, 1)
    ]
    # Single best segments anywhere (several may come from one track): "this part sounds like that part".
    segment_scores = centred @ query.mean(axis=0)
    owner = np.repeat(np.arange(len(table.paths)), table.counts)
    segment_scores[~keep[owner]] = -np.inf
    best_rows = np.argsort(-segment_scores)[:top]
    hits = [
        SegmentHit(table.paths[owner[r]], float(table.segment_starts[r]), round(float(segment_scores[r]), 6))
        for r in best_rows
        if np.isfinite(segment_scores[r])
    ]
    return tracks, hits


def mark_used(catalog: Catalog, paths: list[str], note: str | None = None) -> None:
    with catalog.transaction() as c:
        for path in paths:
            c.execute(
                "INSERT OR REPLACE INTO used_tracks VALUES (?, ?, ?)",
                (path_key(os.path.abspath(path)), time.time(), note),
            )
