"""Where in a track the music starts: finer windows than the segment grid, on the track's downbeats.

The ranking scores windows that start on segment boundaries (10 s apart). For the best tracks this
module scores windows at musical starts — every downbeat when the rhythm analysis measured the track,
every FALLBACK_HOP seconds otherwise — from the stored per-segment embeddings, without the music
model: a window row covering [t, t + L) gets the overlap-weighted mean of the segments it covers, the
way the music model's own segment embedding is the mean of its patches (exact when the sound is steady
within each segment), re-normalised, then scored against the query row as the ranking does (plus the
prompt terms' bias, weighted the same way). Among starts within SECTION_TOLERANCE of the best score a
section start wins: an edit that starts where a section starts sounds intended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from viml.engine.music.rhythm.types import Rhythm
from viml.search.blas import one_blas_thread

FALLBACK_HOP = 1.0  # seconds between candidate starts for a track without measured downbeats
SECTION_TOLERANCE = 0.01  # score (cosine) a section start may give up against the best start
FINE_CANDIDATES = 50  # tracks whose starts are refined (the ranking's best, before words are fused)


@dataclass(frozen=True)
class Placement:
    start: float  # seconds into the track
    score: float  # the window's score at that start
    bar: int | None  # 1-based bar number of the start (None without downbeats)
    on_downbeat: bool
    section_start: bool
    # Every candidate start and its window's score: the match over the track at this finer resolution.
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)


@dataclass(frozen=True)
class TrackSegments:
    """One track's stored segments as the refinement reads them."""

    embeddings: np.ndarray  # [S, D]
    segment_starts: np.ndarray  # [S] seconds
    segment_ends: np.ndarray  # [S] seconds
    rhythm: Rhythm | None
    duration: float
    bias: np.ndarray | None = None  # [S] the prompt terms' bias per segment


def candidate_starts(rhythm: Rhythm | None, duration: float, length: float) -> np.ndarray:
    """Starts a window of `length` seconds may take: the downbeats (or a FALLBACK_HOP grid) that leave
    room for it, and 0 when nothing does."""
    latest = max(0.0, duration - length)
    if rhythm is not None and len(rhythm.beats.downbeats):
        starts = rhythm.beats.downbeats
    else:
        starts = np.arange(0.0, latest + 1e-9, FALLBACK_HOP)
    starts = starts[starts <= latest + 1e-6]
    return starts if len(starts) else np.zeros(1)


def window_weights(
    segment_starts: np.ndarray, segment_ends: np.ndarray, window_starts: np.ndarray, seconds: float
) -> np.ndarray:
    """[W, S] share of each window [t, t + seconds) that segment s covers (rows sum to <= 1)."""
    lo = np.maximum(window_starts[:, None], segment_starts[None, :])
    hi = np.minimum(window_starts[:, None] + seconds, segment_ends[None, :])
    return np.clip(hi - lo, 0.0, None) / seconds


def fine_scores(
    embeddings: np.ndarray,
    segment_starts: np.ndarray,
    segment_ends: np.ndarray,
    query: np.ndarray,
    starts: np.ndarray,
    segment_seconds: float,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Score of the window at each start: mean over query rows k of the row's score against the music
    in [start + k * segment_seconds, start + (k + 1) * segment_seconds) (one track of `many_fine_scores`)."""
    track = TrackSegments(embeddings, segment_starts, segment_ends, None, 0.0, bias)
    return many_fine_scores([track], [np.asarray(starts, np.float64)], query, segment_seconds)[0]


def many_fine_scores(
    tracks: list[TrackSegments], starts: list[np.ndarray], query: np.ndarray, segment_seconds: float
) -> list[np.ndarray]:
    """`fine_scores` of several tracks at once (each at its own starts): the refinement of the ranking's
    best 50 tracks is a few dozen array operations in all, not a few dozen per track.

    Everything through the segments' own products: a mixed row w . M has dot w . (M q) with a query row
    and squared norm w' (M M') w. The segments (in time order) that one window row covers are a few
    adjacent ones, so only the band of M M' next to its diagonal is needed: O((S + starts x K) x band)
    work and no [starts x segments] or [S x S] matrices (`dense_fine_scores` is the same formula with
    every weight and the whole Gram matrix)."""
    if not tracks:  # e.g. a filter that leaves no track to refine
        return []
    query = np.atleast_2d(query).astype(np.float64)
    k = query.shape[0]
    transposed = np.ascontiguousarray(query.T)
    counts = np.array([len(track.embeddings) for track in tracks], np.int64)
    begin = np.concatenate([np.asarray(t.segment_starts, np.float64) for t in tracks])
    if np.any((begin[1:] < begin[:-1]) & (np.diff(np.repeat(np.arange(len(tracks)), counts)) == 0)):
        tracks = [_in_time_order(track) for track in tracks]  # the band needs time order; stored ones are
        begin = np.concatenate([np.asarray(t.segment_starts, np.float64) for t in tracks])
    windows = np.array([len(at) for at in starts], np.int64)
    total = int(counts.sum())
    if total == 0 or windows.sum() == 0:
        return [np.zeros(len(at), np.float64) for at in starts]
    rows = np.concatenate([[0], np.cumsum(counts)[:-1]])
    end = np.concatenate([np.asarray(t.segment_ends, np.float64) for t in tracks])
    # Window rows, start-major: [start 0 row 0, start 0 row 1, ..., start 1 row 0, ...] of each track.
    lo = (np.concatenate(starts).astype(np.float64)[:, None] + np.arange(k) * segment_seconds).ravel()
    owner = np.repeat(np.arange(len(tracks)), windows * k)
    first, last = np.empty(len(lo), np.int64), np.empty(len(lo), np.int64)
    spans = np.concatenate([[0], np.cumsum(windows * k)]).tolist()
    for row, count, a, b in zip(rows.tolist(), counts.tolist(), spans[:-1], spans[1:], strict=True):
        # Covered: end > lo and start < hi; with starts in order, every such segment is in [first, last].
        ends = np.maximum.accumulate(end[row : row + count])
        first[a:b] = row + np.searchsorted(ends, lo[a:b], side="right")
        last[a:b] = (
            row + np.searchsorted(begin[row : row + count], lo[a:b] + segment_seconds, side="left") - 1
        )
    clamp = np.minimum(rows[owner] + np.maximum(counts[owner], 1) - 1, total - 1)
    band = max(1, int(np.max(last - first, initial=0)) + 1)
    index = first[:, None] + np.arange(band)  # [window rows, band]: the segments a window row may cover
    inside = index <= last[:, None]
    index = np.minimum(index, clamp[:, None])  # never another track's rows (their weights are 0 anyway)
    overlap = np.minimum(lo[:, None] + segment_seconds, end[index]) - np.maximum(lo[:, None], begin[index])
    weights = np.where(inside, np.clip(overlap, 0.0, None), 0.0) / segment_seconds
    music = np.concatenate([t.embeddings for t in tracks], dtype=np.float64)
    projected = music @ transposed  # [rows, K] (BLAS on one thread: place_many)
    query_row = np.tile(np.arange(k), len(lo) // k)
    dots = np.zeros(len(lo), np.float64)
    squared = np.zeros(len(lo), np.float64)
    for d in range(band):
        # products[s] = M[s] . M[s + d] (0 past the end): one diagonal of the band of the Gram matrix.
        products = np.zeros(total, np.float64)
        products[: total - d] = np.vecdot(music[: total - d], music[d:])
        dots += weights[:, d] * projected[index[:, d], query_row]
        paired = weights[:, : band - d] * weights[:, d:]
        squared += (1.0 if d == 0 else 2.0) * np.einsum("rb,rb->r", paired, products[index[:, : band - d]])
    norms = np.sqrt(np.maximum(squared, 0.0))
    similarity = np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0)
    if any(track.bias is not None for track in tracks):
        bias = np.concatenate([np.zeros(c) if t.bias is None else np.asarray(t.bias, np.float64)
                               for t, c in zip(tracks, counts, strict=True)])  # fmt: skip
        similarity += np.einsum("rb,rb->r", weights, bias[index]) / np.maximum(weights.sum(axis=1), 1e-12)
    per_start = similarity.reshape(-1, k).mean(axis=1)
    return np.split(per_start, np.cumsum(windows)[:-1])


def _in_time_order(track: TrackSegments) -> TrackSegments:
    """The track with its segments sorted by start (the band needs time order; stored ones are)."""
    begin = np.asarray(track.segment_starts)
    if not np.any(begin[1:] < begin[:-1]):
        return track
    order = np.argsort(begin, kind="stable")
    bias = None if track.bias is None else np.asarray(track.bias)[order]
    return TrackSegments(np.asarray(track.embeddings)[order], begin[order], np.asarray(track.segment_ends)[order],
                         track.rhythm, track.duration, bias)  # fmt: skip


def dense_fine_scores(
    embeddings: np.ndarray,
    segment_starts: np.ndarray,
    segment_ends: np.ndarray,
    query: np.ndarray,
    starts: np.ndarray,
    segment_seconds: float,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """`fine_scores` with the whole [starts x segments] weight matrices and Gram matrix: the formula as
    written, the reference the banded one is tested against (and 4-10x slower on a 4-minute track)."""
    query = np.atleast_2d(query).astype(np.float64)
    music = np.asarray(embeddings, np.float64)
    gram = music @ music.T
    projected = music @ query.T  # [S, K]
    total = np.zeros(len(starts), np.float64)
    for row in range(query.shape[0]):
        weights = window_weights(
            segment_starts, segment_ends, starts + row * segment_seconds, segment_seconds
        )
        norms = np.sqrt(np.maximum(np.einsum("ws,ws->w", weights @ gram, weights), 0.0))
        similarity = np.where(norms > 0, weights @ projected[:, row] / np.maximum(norms, 1e-12), 0.0)
        if bias is not None:
            similarity += weights @ bias / np.maximum(weights.sum(axis=1), 1e-12)
        total += similarity
    return total / query.shape[0]


def place(
    embeddings: np.ndarray,
    segment_starts: np.ndarray,
    segment_ends: np.ndarray,
    query: np.ndarray,
    segment_seconds: float,
    rhythm: Rhythm | None,
    duration: float,
    bias: np.ndarray | None = None,
) -> Placement:
    """The best musical start of one track for the query (see the module's docstring)."""
    track = TrackSegments(embeddings, segment_starts, segment_ends, rhythm, duration, bias)
    return place_many([track], query, segment_seconds)[0]


def place_many(tracks: list[TrackSegments], query: np.ndarray, segment_seconds: float) -> list[Placement]:
    """`place` for several tracks, their windows scored together (many_fine_scores)."""
    length = segment_seconds * np.atleast_2d(query).shape[0]
    starts = [candidate_starts(track.rhythm, track.duration, length) for track in tracks]
    with one_blas_thread():  # its products are small (search/blas.py)
        scores = many_fine_scores(tracks, starts, query, segment_seconds)
    return [_choose(track.rhythm, at, score) for track, at, score in zip(tracks, starts, scores, strict=True)]


def _choose(rhythm: Rhythm | None, starts: np.ndarray, scores: np.ndarray) -> Placement:
    best = int(np.argmax(scores))
    section_start = False
    if rhythm is not None and len(rhythm.sections):
        is_section = np.isin(np.round(starts, 3), np.round(rhythm.sections, 3))
        near_best = np.flatnonzero(is_section & (scores >= scores[best] - SECTION_TOLERANCE))
        if len(near_best):
            best = int(near_best[np.argmax(scores[near_best])])
        section_start = bool(is_section[best])
    start = float(starts[best])
    on_downbeat, bar = False, None
    if rhythm is not None and len(rhythm.beats.downbeats):
        downbeats = rhythm.beats.downbeats
        on_downbeat = bool(np.min(np.abs(downbeats - start)) < 1e-6)
        bar = int(np.searchsorted(downbeats, start + 1e-6))
    return Placement(start, float(scores[best]), bar, on_downbeat, section_start, starts, scores)
