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

A clip (K > 1 rows) takes as candidates the clip_tracks() tracks whose mean segment is closest to its
mean row (one exact scan of the track means: a [T, D] matrix, 63 MB at 1 M segments), and the tracks of
its mean row's CLIP_NEIGHBOURS nearest segments (tracks whose best part is unlike their mean), searched
in a second thread during the scan. Measured (bench/big_search.py's vectors, clips of three
music-like rows, the hard case: the exact top 50 of 41,666 tracks lie within ~0.01 cosine of thousands
of others; exact neighbours, so the rule's own recall): the mean row's 4,096 nearest segments, the
previous rule, kept 0.974 of the exact top 50 (2,335 tracks) and cost 100 ms on 1 M segments, 70 % of it
the graph search at breadth 8,192; each row's 2,048 plus the mean's kept 0.99 (3,300 tracks) but four
graph searches of 2,048 cost more still; the 3,000 tracks closest on average keep 0.989-0.994 (3,000
tracks), and at 5 M segments 0.981 need 6,000 (so the count grows as the square root of the library).
Scoring them exactly then reads their rows once (~22 ms at 1 M: memory-bound at ~5 GB/s on one core; a
second thread did not help on 2 cores). Each row's farthest neighbour would give a bound too, but for
music-like rows it is too loose to prove anything. When a filter leaves too few candidates, the exact
path over everything is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
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
CLIP_TRACKS = 3000  # a clip's candidates by mean similarity, at 1 M segments (clip_tracks)
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
    tracks = len(table.counts)
    also = np.fromiter(also, dtype=np.int64)
    track_bias = np.maximum.reduceat(bias, table.starts) if bias is not None and tracks else None
    if query.shape[0] > 1:  # a clip: the tracks closest on average, and its mean row's neighbours
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
        mask = np.zeros(tracks, bool)
        wanted = clip_tracks(tracks)
        mask[np.argpartition(-closeness, wanted - 1)[:wanted] if wanted < tracks else slice(None)] = True
        if neighbours is not None:
            mask[lookup.tracks(neighbours.result()[0])] = True
        mask[also] = True
        if keep is not None:
            mask &= keep
        if mask.sum() > tracks // 4 or mask.sum() < need:
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


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="viml-segment-index")


def clip_tracks(tracks: int) -> int:
    """How many tracks a clip scores by their mean similarity: CLIP_TRACKS at 1 M segments (41,666
    tracks), growing as the square root of the library's tracks (module docstring)."""
    return max(1, round(CLIP_TRACKS * (tracks / 41_666) ** 0.5))


def subset_window_scores(
    table: TrackTable, query: np.ndarray, bias: np.ndarray | None, mask: np.ndarray
) -> WindowScores:
    """`window_scores` of the masked tracks, laid out as over the whole table (the rows of other tracks
    hold -inf, their best is -inf), so everything after the scoring reads them as it reads exact ones."""
    chosen = np.flatnonzero(mask)
    counts = table.counts[chosen]
    firsts = table.starts[chosen]
    sub_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rows = np.repeat(firsts - sub_starts, counts) + np.arange(int(counts.sum()))
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    per_row = np.empty((query.shape[0], len(rows)), np.float32)  # [K, rows]: a query row's similarities
    # One matmul per run of adjacent tracks, on the table's rows in place: gathering the candidates'
    # rows into one matrix first cost 3x as much (measured: 3,000 tracks of 24 segments, 51 vs 17 ms),
    # and query @ rows.T 27 % less than rows @ query.T (16 vs 22 ms).
    breaks = np.flatnonzero(firsts[1:] != firsts[:-1] + counts[:-1]) + 1  # where the table's rows jump
    run_starts = np.concatenate([[0], breaks]).astype(np.int64)[: len(chosen)]
    run_ends = np.concatenate([breaks, [len(chosen)]]).astype(np.int64) if len(chosen) else run_starts[:0]
    ends = sub_starts + counts
    embeddings = np.asarray(table.embeddings)  # not np.memmap: its slices cost 11 µs more each
    for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
        at, to, first = int(sub_starts[a]), int(ends[b - 1]), int(firsts[a])
        np.matmul(query, embeddings[first : first + to - at].T, out=per_row[:, at:to])
    part = windows_of(per_row.T, sub_starts, counts, None if bias is None else np.asarray(bias)[rows])
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
