"""Exact window scoring on candidate tracks only, for libraries too big to score every window per query.

The segment index (search/ann.py) gives each query row its nearest segments; their tracks are the
candidates, and search/ranking.py's exact `window_scores` runs on them alone (best offsets, prompt terms,
filters, pooling, fusion and offsets.py's refinement then work as on the whole library).

A prompt (K = 1) asks for its row's neighbours. A window's score is then the segment's similarity, so a
track none of whose segments came back scores at most s, the similarity of the farthest neighbour returned
(plus the track's best prompt-term bias). That bound says when the candidates provably hold the exact top
(within the approximation of the graph search and its float16 vectors; tests/test_search_ann.py checks
the rule on exact neighbours): if the `need`-th best candidate scores above it, no other track can enter;
otherwise more neighbours are asked for (x4) once, and then the candidates are used as they are (also
when asking for more would make them many: over a quarter of the tracks).

A clip (K > 1 rows) has no such bound (each row's farthest neighbour gives one, but for music-like rows
it is too loose to prove anything), so its candidates come from the track means. A track's best window
lies above its mean similarity with the clip's mean row by its window excess (best - mean); a track can
enter the top `need` only if its mean similarity plus its excess passes the cutoff. The CLIP_FIRST
tracks closest on average are scored first (one exact scan of the track means: a [T, D] matrix, 63 MB at
1 M segments), with the tracks of the mean row's CLIP_NEIGHBOURS nearest segments (searched in the
second thread during the scan); then, round after round, every track whose mean similarity plus the
largest excess seen among the scored tracks passes the `need`-th best score so far, until none is left.
The largest excess seen stands in for every track's (it is not a bound: an unscored track may have a
larger one), so the rule is measured, and its count grows with the library by itself. Measured
(bench/big_search.py's vectors, 40 clips of three music-like rows not among the benchmark's, the hard
case: the exact top 50 lies within ~0.01 cosine of thousands of other tracks; exact neighbours, so the
rule's own recall of the exact top 50): at 1 M segments 0.9945 (worst clip 0.96) scoring 3,480 tracks
(p50), at 5 M 0.9915 (0.94) scoring 11,070. A fixed count does worse for the work: the 3,000 closest
(the previous rule) kept 0.986 at 1 M, and 7,900 kept 0.976 at 5 M; the second largest excess instead of
the largest kept 0.987 at 1 M but 0.980 at 5 M; the largest excess per track length 0.967 at 5 M; the
means of thirds or 8-segment chunks of each track instead of its mean ranked no better. Scoring the
candidates exactly reads their rows in place, one small product per track (~5 µs a track at 1 M, 3.6
of them reading its 37 KB: memory-bound at ~10 GB/s; splitting the products between two threads did not
help, measured). When a filter leaves too few candidates,
or the rounds would score over a quarter of the tracks, the exact path over everything is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from viml.search.blas import one_blas_thread
from viml.search.ranking import WindowScores, windows_of

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
CLIP_FIRST = 1000  # a clip's first round: the tracks closest on average
EXCESS_RANK = 1  # which largest window excess seen stops a clip's rounds (1: the largest)
CLIP_NEIGHBOURS = 256  # a clip's mean row's nearest segments, also candidates


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
    """Content hash -> the table's tracks with it (duplicate files share a content), path -> track, and
    each track's mean segment (for clips, computed on the first)."""

    def __init__(self, table: TrackTable) -> None:
        self.table = table
        self.by_hash: dict[str, list[int]] = {}
        for index, content_hash in enumerate(table.hashes):
            self.by_hash.setdefault(content_hash, []).append(index)
        self.by_path = {path: index for index, path in enumerate(table.paths)}

    @cached_property
    def views(self) -> list[np.ndarray]:
        """Each track's rows as a [D, S] view of the matrix (made once: a slice and a transpose per
        track per query cost ~0.7 µs of the ~6 µs its scoring takes)."""
        embeddings = np.asarray(self.table.embeddings)  # not np.memmap: its slices cost 11 µs more each
        return [embeddings[first : first + count].T
                for first, count in zip(self.table.starts.tolist(), self.table.counts.tolist(), strict=True)]  # fmt: skip

    @cached_property
    def means(self) -> np.ndarray:
        """float32 [T, D]: each track's mean segment (one pass over the matrix; a sum per track: 7x
        faster than np.add.reduceat along rows, measured)."""
        table = self.table
        embeddings = np.asarray(table.embeddings)  # not np.memmap: its slices cost 11 µs more each
        out = np.zeros((len(table.counts), embeddings.shape[1]), np.float32)
        for track, (first, count) in enumerate(
            zip(table.starts.tolist(), table.counts.tolist(), strict=True)
        ):
            np.sum(embeddings[first : first + count], axis=0, out=out[track])
        out /= np.maximum(table.counts, 1).astype(np.float32)[:, None]
        return out

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
    with one_blas_thread():  # hundreds of small products (search/blas.py)
        return _candidate_scores(
            table, index, lookup, query, bias, keep, need, np.fromiter(also, np.int64), threads
        )


def _candidate_scores(
    table: TrackTable,
    index: SegmentIndex,
    lookup: TrackLookup,
    query: np.ndarray,
    bias: np.ndarray | None,
    keep: np.ndarray | None,
    need: int,
    also: np.ndarray,
    threads: int,
) -> tuple[WindowScores, np.ndarray] | None:
    if query.shape[0] > 1:
        return clip_scores(table, index, lookup, query, bias, keep, need, also, threads)
    tracks = len(table.counts)
    track_bias = np.maximum.reduceat(bias, table.starts) if bias is not None and tracks else None
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
            return subset_window_scores(table, query, bias, mask, lookup), mask
        if mask.sum() > tracks // 4:  # no longer few: the last try's candidates, else the plain path
            return last
        scores = subset_window_scores(table, query, bias, mask, lookup)
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
                    return subset_window_scores(table, query, bias, mask, lookup), mask
            if attempt == TRIES - 1:
                return scores, mask  # not proven complete: as good as the index's recall (measured)
            last = (scores, mask)
        count = min(4 * count, len(index))
    return None


def clip_scores(
    table: TrackTable,
    index: SegmentIndex,
    lookup: TrackLookup,
    query: np.ndarray,
    bias: np.ndarray | None,
    keep: np.ndarray | None,
    need: int,
    also: np.ndarray,
    threads: int = 0,
) -> tuple[WindowScores, np.ndarray] | None:
    """A clip's candidates (module docstring): the tracks closest on average to its mean row, scored
    exactly in rounds until none left can reach the top `need` by the largest window excess seen, plus
    its mean row's nearest segments' tracks; None when that would be over a quarter of the tracks."""
    tracks = len(table.counts)
    mean = query.mean(axis=0)
    count = min(CLIP_NEIGHBOURS, len(index))
    row = (mean / max(float(np.linalg.norm(mean)), 1e-12))[None]
    # The graph search runs beside the scan of the track means (usearch releases the GIL).
    neighbours = _pool().submit(index.search, row, count, count, threads) if count else None
    closeness = lookup.means @ mean  # each track's mean similarity with the clip's mean row
    if bias is not None:
        closeness += np.add.reduceat(np.asarray(bias, np.float32), table.starts) / table.counts
    if keep is not None:
        closeness[~keep] = -np.inf
    kept = tracks if keep is None else int(keep.sum())
    if kept < need:
        return None
    limit = tracks // 4  # more than this: the exact path over everything costs about as much
    first = min(max(CLIP_FIRST, need), kept)
    if first > limit:
        return None
    scorer = SubsetScorer(table, query, bias, lookup)
    scorer.add(np.argpartition(-closeness, first - 1)[:first])
    extra = also if keep is None else also[keep[also]]
    if neighbours is not None:
        found = np.asarray(lookup.tracks(neighbours.result()[0]), np.int64)
        extra = np.concatenate([extra, found if keep is None else found[keep[found]]])
    scorer.add(extra)
    while True:
        scored = np.flatnonzero(scorer.scored)
        best = scorer.best[scored]
        cutoff = float(np.partition(best, len(best) - need)[len(best) - need])
        gaps = best - closeness[scored]  # how far a track's best window lies above its mean
        excess = float(np.partition(gaps, len(gaps) - EXCESS_RANK)[len(gaps) - EXCESS_RANK])
        more = np.flatnonzero((closeness > cutoff - excess) & ~scorer.scored)
        if len(more) == 0:
            break
        if len(scored) + len(more) > limit:
            return None
        scorer.add(more)
    return scorer.scores(), scorer.scored


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="viml-segment-index")


def subset_window_scores(
    table: TrackTable,
    query: np.ndarray,
    bias: np.ndarray | None,
    mask: np.ndarray,
    lookup: TrackLookup | None = None,
) -> WindowScores:
    """`window_scores` of the masked tracks, laid out as over the whole table (the rows of other tracks
    hold -inf, their best is -inf), so everything after the scoring reads them as it reads exact ones."""
    scorer = SubsetScorer(table, query, bias, lookup)
    scorer.add(np.flatnonzero(mask))
    return scorer.scores()


class SubsetScorer:
    """Exact window scores of tracks added in rounds, into arrays laid out as over the whole table."""

    def __init__(
        self, table: TrackTable, query: np.ndarray, bias: np.ndarray | None, lookup: TrackLookup | None = None
    ) -> None:
        self.table = table
        self.query = np.atleast_2d(np.asarray(query, dtype=np.float32))
        self.bias = None if bias is None else np.asarray(bias)
        self.views = (lookup if lookup is not None else TrackLookup(table)).views
        tracks, total = len(table.counts), int(table.embeddings.shape[0])
        self.window = np.full(total, -np.inf, np.float32)
        self.best = np.full(tracks, -np.inf, np.float32)
        self.best_offset = np.zeros(tracks, np.int64)
        self.scored = np.zeros(tracks, bool)

    def add(self, tracks: np.ndarray) -> None:
        """Score these tracks (indices; those scored already are skipped)."""
        chosen = np.unique(np.asarray(tracks, np.int64))
        chosen = chosen[~self.scored[chosen]]
        if len(chosen) == 0:
            return
        self.scored[chosen] = True
        table, query, k = self.table, self.query, self.query.shape[0]
        counts = table.counts[chosen]
        sub_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        total = int(counts.sum())
        rows = np.repeat(table.starts[chosen] - sub_starts, counts) + np.arange(total)
        # One small product per track on its rows in place, query [K, D] . rows' [D, S] into the track's
        # own [K, S] block: gathering the candidates' rows into one matrix first cost 3x as much
        # (measured: 3,000 tracks of 24 segments, 51 vs 17 ms), rows @ query.T 27 % more, np.matmul into
        # a strided [K, rows] slice 25 % more than np.dot into a block (22 vs 16 ms). Each product is
        # small enough for OpenBLAS to keep on the calling thread.
        blocks = np.empty(k * total, np.float32)
        views, dot = self.views, np.dot
        for track, at, count in zip(chosen.tolist(), (k * sub_starts).tolist(), counts.tolist(), strict=True):
            dot(query, views[track], blocks[at : at + k * count].reshape(k, count))
        # Row i of track j, query row r, lies at k * start_j + r * count_j + (i - start_j).
        within = np.repeat((k - 1) * sub_starts, counts) + np.arange(total)
        step = np.repeat(counts, counts)
        similarities = np.empty((total, k), np.float32)
        for r in range(k):
            np.take(blocks, within + r * step if r else within, out=similarities[:, r])
        part = windows_of(similarities, sub_starts, counts, None if self.bias is None else self.bias[rows])
        self.window[rows] = part.scores
        self.best[chosen] = part.best
        self.best_offset[chosen] = part.best_offset

    def scores(self) -> WindowScores:
        offsets = np.maximum(self.table.counts - self.query.shape[0] + 1, 1).astype(np.int64)
        return WindowScores(self.window, offsets, self.best, self.best_offset)
