"""The fast forms of the big-library search equal the plain ones: the refinement's banded, batched window
scores (search/offsets.py) against the dense formula one track at a time, candidate scoring in rounds
against one pass, and a clip's rounds stop only when no unscored track can reach the cutoff by the
largest window excess seen (search/candidates.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_search_ann import library
from viml.engine.music.rhythm.types import Beats, Rhythm
from viml.engine.vectors import normalize_rows
from viml.search import candidates, offsets
from viml.search.ranking import window_scores


def random_track(rng, dim=16, shuffled=False, hop=10.0):
    """Segments of 10 s every `hop` seconds (overlapping when hop < 10), the last one cut short."""
    count = int(rng.integers(1, 40))
    music = normalize_rows(rng.standard_normal((count, dim)))
    starts = np.arange(count) * hop
    duration = float(starts[-1]) + 10.0 - float(rng.uniform(0, 9))
    ends = np.minimum(starts + 10.0, duration)
    if shuffled:  # rows not in time order: the band must sort them
        order = rng.permutation(count)
        music, starts, ends = music[order], starts[order], ends[order]
    bias = 0.1 * rng.standard_normal(count) if rng.random() < 0.5 else None
    return offsets.TrackSegments(music, starts, ends, None, duration, bias)


def test_banded_batched_fine_scores_equal_the_dense_formula_track_by_track():
    rng = np.random.default_rng(0)
    for trial in range(120):
        k = int(rng.integers(1, 5))
        query = normalize_rows(rng.standard_normal((k, 16)))
        tracks = [random_track(rng, shuffled=trial % 5 == 0, hop=(10.0, 5.0, 7.5, 2.5)[trial % 4])
                  for _ in range(int(rng.integers(1, 6)))]  # fmt: skip
        # Starts anywhere, also before the music and past its end (those windows cover less).
        starts = [np.sort(rng.uniform(-5, t.duration + 5, int(rng.integers(1, 50)))) for t in tracks]
        batched = offsets.many_fine_scores(tracks, starts, query, 10.0)
        for track, at, got in zip(tracks, starts, batched, strict=True):
            dense = offsets.dense_fine_scores(track.embeddings, track.segment_starts, track.segment_ends,
                                              query, at, 10.0, track.bias)  # fmt: skip
            np.testing.assert_allclose(got, dense, rtol=0, atol=1e-12)


def test_place_many_places_each_track_as_place_does():
    rng = np.random.default_rng(1)
    tracks = []
    for i in range(12):
        track = random_track(rng)
        if i % 2:  # measured downbeats every 2 s from 0.5 s and a section start
            downbeats = np.arange(0.5, track.duration, 2.0)
            beats = Beats(downbeats, np.ones(len(downbeats), int), 120.0, 0.9, 4)
            rhythm = Rhythm(beats, np.array([0.0, float(downbeats[len(downbeats) // 2])]), -14.0)
            track = offsets.TrackSegments(track.embeddings, track.segment_starts, track.segment_ends, rhythm,
                                          track.duration, track.bias)  # fmt: skip
        tracks.append(track)
    query = normalize_rows(rng.standard_normal((2, 16)))
    together = offsets.place_many(tracks, query, 10.0)
    for track, placed in zip(tracks, together, strict=True):
        alone = offsets.place(track.embeddings, track.segment_starts, track.segment_ends, query, 10.0,
                              track.rhythm, track.duration, track.bias)  # fmt: skip
        assert (placed.start, placed.bar, placed.on_downbeat, placed.section_start) == (
            alone.start, alone.bar, alone.on_downbeat, alone.section_start)  # fmt: skip
        assert placed.score == pytest.approx(alone.score, abs=1e-12)
        np.testing.assert_allclose(placed.scores, alone.scores, rtol=0, atol=1e-12)


def test_candidates_scored_in_rounds_equal_one_pass_and_the_exact_windows():
    table = library(300, seed=8)
    rng = np.random.default_rng(9)
    query = normalize_rows(rng.standard_normal((3, 24)).astype(np.float32))
    bias = (0.05 * rng.standard_normal(len(table.embeddings))).astype(np.float32)
    chosen = np.sort(rng.choice(300, 90, replace=False))
    once = candidates.subset_window_scores(table, query, bias, np.isin(np.arange(300), chosen))
    scorer = candidates.SubsetScorer(table, query, bias, candidates.TrackLookup(table))
    for part in np.array_split(rng.permutation(chosen), 4):  # rounds in any order, one track twice
        scorer.add(np.concatenate([part, part[:1]]))
    rounds = scorer.scores()
    np.testing.assert_array_equal(rounds.best, once.best)
    np.testing.assert_array_equal(rounds.best_offset, once.best_offset)
    valid = np.concatenate([np.arange(table.starts[t], table.starts[t] + once.offsets[t]) for t in chosen])
    np.testing.assert_array_equal(rounds.scores[valid], once.scores[valid])  # where a window starts
    exact = window_scores(table.embeddings, table.starts, table.counts, query, bias)
    np.testing.assert_allclose(rounds.best[chosen], exact.best[chosen], rtol=1e-6)
    np.testing.assert_array_equal(rounds.best_offset[chosen], exact.best_offset[chosen])
    np.testing.assert_allclose(rounds.scores[valid], exact.scores[valid], rtol=1e-6)
    assert np.all(np.isneginf(np.delete(rounds.best, chosen)))


def test_a_clips_rounds_stop_only_when_no_unscored_track_can_reach_the_cutoff(monkeypatch):
    from viml.search import ann  # usearch is a dependency: no skip

    monkeypatch.setattr(candidates, "CLIP_FIRST", 60)  # small first round: the rounds must carry on
    table = library(2000, seed=10)
    index = ann.SegmentIndex.build(table)
    lookup = candidates.TrackLookup(table)
    rng = np.random.default_rng(11)
    for _ in range(4):
        track = int(rng.integers(2000))
        first = int(table.starts[track])
        clip = normalize_rows(table.embeddings[first : first + 3] + 0.5 * rng.standard_normal((3, 24)))
        found = candidates.candidate_scores(
            table, index, lookup, clip.astype(np.float32), None, None, need=50
        )
        assert found is not None
        scores, scored = found
        assert 60 < scored.sum() < 2000 // 4  # more than the first round, far from everything
        closeness = lookup.means @ clip.mean(axis=0)
        best = scores.best[scored]
        cutoff = np.sort(best)[-50]
        excess = np.max(best - closeness[scored])
        assert np.all(closeness[~scored] <= cutoff - excess + 1e-6)
        np.testing.assert_allclose(
            best, window_scores(table.embeddings, table.starts, table.counts, clip).best[scored], rtol=1e-5
        )


def test_refining_no_tracks_gives_no_placements():
    """A filter can leave nothing to refine (`viml suggest --vocals` on a library without vocals)."""
    assert offsets.place_many([], np.ones((2, 4), np.float32), 10.0) == []
