"""Exact window scoring on candidate tracks only, for libraries too big to score every window per query.

The segment index (search/ann.py) gives each query row its nearest segments; their tracks are the
candidates, and search/ranking.py's exact `window_scores` runs on them alone (best offsets, prompt terms,
filters, pooling, fusion and offsets.py's refinement then work as on the whole library).

A prompt (K = 1) asks for its row's neighbours. A window's score is then the segment's similarity, so a
track none of whose segments came back scores at most s, the similarity of the farthest neighbour returned
(plus the track's best prompt-term bias). That bound says when the candidates provably hold the exact top
(within the graph search's own approximation): if the `need`-th best candidate scores above it, no other
track can enter; otherwise more neighbours are asked for (x4) once, and then the candidates are used as
they are (also when asking for more would make them many: over a quarter of the tracks).

A clip (K > 1 rows) asks for the neighbours of its mean row, CLIP_NEIGHBOURS of them, once. Measured on
300,000 segments (bench/big_search.py's vectors, music-like clip rows): at equal cost the mean row's
neighbours keep more of the exact top 50 than each row's own (recall@50 0.93 with 1,024 mean-row
neighbours in 20 ms vs 0.93 with 512 per row in 31 ms; 0.98 with 2,048 mean-row neighbours). Each row's
farthest neighbour would give a bound too, but for music-like rows it is too loose to prove anything.
When a filter leaves too few candidates, the exact path over everything is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from viml.search.ranking import WindowScores, window_scores

if TYPE_CHECKING:
    from collections.abc import Callable

    from viml.catalog.store import Catalog, TrackTable
    from viml.search.ann import SegmentIndex

# Below this many segments the exact path over everything is fast enough (measured crossover:
# bench/big_search.py; ~30 ms at 200,000 segments on 2 cores) and needs no index.
MIN_SEGMENTS = 200_000
WORD_CANDIDATES = 500  # the prompt's best word matches, scored too when words are fused with the sound
FIRST_NEIGHBOURS = 512  # a prompt's, on the first try (then x4)
TRIES = 2
CLIP_NEIGHBOURS = 4096  # a clip's mean row's


def min_segments() -> int:
    """The size from which the index is used (VIML_ANN_MIN_SEGMENTS: another crossover; 0: always)."""
    value = os.environ.get("VIML_ANN_MIN_SEGMENTS", "")
    return int(value) if value.strip().isdigit() else MIN_SEGMENTS


def index_scores(
    catalog: Catalog,
    view: Callable[[str, Callable[[], object]], Any],
    table: TrackTable,
    space: str | None,
    query: np.ndarray,
    bias: np.ndarray | None,
    keep: np.ndarray | None,
    need: int,
    words_text: str | None = None,
) -> tuple[WindowScores, np.ndarray] | None:
    """Searcher.rank's way in: (window scores, the candidate mask to rank within) for a big library with
    an index, or None (a small library, no usearch, a terms-only query, no index yet: score every track).
    `view(name, build)` keeps the index and lookups per catalog generation (Searcher._view)."""
    from viml.search import ann

    if table.embeddings.shape[0] < min_segments() or not np.any(query) or not ann.available():
        return None

    def load() -> SegmentIndex | None:
        return ann.SegmentIndex.open(catalog.path, catalog.state(), space, table, build=False)[0]

    index = view(f"ann:{space}:{id(table)}", load)
    if index is None:
        return None
    lookup = view(f"ann-lookup:{id(table)}", lambda: TrackLookup(table))
    also = (
        [lookup.by_path[p] for p in catalog.word_matches(words_text, WORD_CANDIDATES) if p in lookup.by_path]
        if words_text
        else []
    )
    return candidate_scores(table, index, lookup, query, bias, keep, need, also)


def prepare_index(catalog: Catalog, space: str | None, threads: int = 0) -> dict:
    """Build or update the space's segment index when the library is big enough to use it (`viml scan`
    calls this after embedding: a full build takes minutes at a million segments, a query never does it)."""
    from viml.search import ann

    table = catalog.load_tracks(space)
    segments = int(table.embeddings.shape[0])
    if segments < min_segments():
        return {
            "index": None,
            "segments": segments,
            "note": f"exact search below {min_segments():,} segments",
        }
    if not ann.available():
        return {"index": None, "segments": segments,
                "note": "no segment index: pip install usearch (searches score every segment)"}  # fmt: skip
    index, how = ann.SegmentIndex.open(catalog.path, catalog.state(), space, table, threads=threads)
    assert index is not None
    return {"index": how, "segments": segments, "vectors": len(index)}


class TrackLookup:
    """Content hash -> the table's tracks with it (duplicate files share a content), path -> track."""

    def __init__(self, table: TrackTable) -> None:
        self.by_hash: dict[str, list[int]] = {}
        for index, content_hash in enumerate(table.hashes):
            self.by_hash.setdefault(content_hash, []).append(index)
        self.by_path = {path: index for index, path in enumerate(table.paths)}

    def tracks(self, hashes: Iterable[str]) -> list[int]:
        return [track for h in hashes for track in self.by_hash.get(h, ())]


def candidate_scores(
    table: TrackTable,
    index: SegmentIndex,
    lookup: TrackLookup,
    query: np.ndarray,
    bias: np.ndarray | None,
    keep: np.ndarray | None,
    need: int,
    also: Iterable[int] = (),
    threads: int = 0,
) -> tuple[WindowScores, np.ndarray] | None:
    """Window scores exact on the candidate tracks (others: best -inf) and the candidate mask (within
    `keep`), or None when the exact path over all tracks is due (too many or too few candidates).
    `also`: tracks to score whatever the index says (e.g. the prompt's best word matches, for fusion)."""
    tracks = len(table.counts)
    also = np.fromiter(also, dtype=np.int64)
    track_bias = np.maximum.reduceat(bias, table.starts) if bias is not None and tracks else None
    if query.shape[0] > 1:  # a clip: its mean row's neighbours, once (module docstring)
        count = min(CLIP_NEIGHBOURS, len(index))
        mean = query.mean(axis=0, keepdims=True)
        hashes, _, _ = index.search(mean / max(float(np.linalg.norm(mean)), 1e-12), count, 2 * count, threads)
        mask = np.zeros(tracks, bool)
        mask[lookup.tracks(hashes)] = True
        mask[also] = True
        if keep is not None:
            mask &= keep
        if count < len(index) and (mask.sum() > tracks // 4 or mask.sum() < need):
            return None
        return subset_window_scores(table, query, bias, mask), mask
    count = min(FIRST_NEIGHBOURS, len(index))
    last: tuple[WindowScores, np.ndarray] | None = None  # candidates not proven complete, if any
    for attempt in range(TRIES):
        hashes, _, similarities = index.search(query, count, expansion=2 * count, threads=threads)
        mask = np.zeros(tracks, bool)
        mask[lookup.tracks(hashes)] = True
        mask[also] = True
        if keep is not None:
            mask &= keep
        if count >= len(index):  # every segment came back: every kept track is scored
            return subset_window_scores(table, query, bias, mask), mask
        if mask.sum() > tracks // 4:  # no longer few: the last try's candidates, else the plain path
            return last
        scores = subset_window_scores(table, query, bias, mask)
        bound = np.full(tracks, float(similarities[0, -1]))  # what a track not found scores at most
        best = scores.best[mask]
        if len(best) >= need:
            cutoff = float(np.partition(best, len(best) - need)[len(best) - need])
            if track_bias is None and np.all(bound[~mask if keep is None else ~mask & keep] <= cutoff):
                return scores, mask
            if track_bias is not None:
                # Tracks the prompt terms could lift over the cutoff: scored too, then none outside can.
                over = ~mask & (bound + track_bias > cutoff) & (keep if keep is not None else True)
                if over.sum() <= max(need, tracks // 50):
                    mask |= over
                    return subset_window_scores(table, query, bias, mask), mask
            if attempt == TRIES - 1:
                return scores, mask  # not proven complete: as good as the index's recall (measured)
            last = (scores, mask)
        count = min(4 * count, len(index))
    return None


def subset_window_scores(
    table: TrackTable, query: np.ndarray, bias: np.ndarray | None, mask: np.ndarray
) -> WindowScores:
    """`window_scores` of the masked tracks, laid out as over the whole table (the rows of other tracks
    hold -inf, their best is -inf), so everything after the scoring reads them as it reads exact ones."""
    chosen = np.flatnonzero(mask)
    counts = table.counts[chosen]
    firsts = table.starts[chosen]
    rows = np.repeat(firsts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(
        int(counts.sum())
    )
    sub_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    part = window_scores(
        np.ascontiguousarray(table.embeddings[rows]), sub_starts, counts, query,
        None if bias is None else np.asarray(bias)[rows],
    )  # fmt: skip
    tracks = len(table.counts)
    total = int(table.embeddings.shape[0])
    scores = np.full(total, -np.inf, np.float32)
    scores[rows] = part.scores
    offsets = np.maximum(table.counts - query.shape[0] + 1, 1).astype(np.int64)
    best = np.full(tracks, -np.inf, np.float32)
    best[chosen] = part.best
    best_offset = np.zeros(tracks, np.int64)
    best_offset[chosen] = part.best_offset
    return WindowScores(scores, offsets, best, best_offset)
