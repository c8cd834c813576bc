"""The segment index (search/ann.py) and the candidate scoring (search/candidates.py): the candidates' exact
scores give the exact ranking; the index follows the catalog incrementally (keyed by content), is rebuilt
when stale or corrupt and never trusted; Searcher.rank through the index ranks as without it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_catalog_ranking import IdentitySpace, write_tone
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, Track, TrackTable
from viml.engine.vectors import normalize_rows
from viml.search import candidates
from viml.search.ranking import top_tracks, window_scores
from viml.search.searcher import Searcher
from viml.search.spaces import ensure_space

pytest.importorskip("usearch")
from viml.search import ann  # noqa: E402

STATS = "viml.demo.stats_analyzer:load"


def library(tracks, dim=24, seed=0, prefix="t"):
    """Tracks of 6-20 segments around a centre each (segments of one track alike, as in real music)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(6, 21, tracks)
    centres = rng.standard_normal((tracks, dim))
    owner = np.repeat(np.arange(tracks), counts)
    embeddings = normalize_rows(
        (centres[owner] + 0.4 * rng.standard_normal((len(owner), dim))).astype(np.float32)
    )
    return table_of(embeddings, counts, [f"{prefix}{seed}-{i}" for i in range(tracks)])


def table_of(embeddings, counts, hashes):
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    paths = [f"/lib/{h}.wav" for h in hashes]
    segment_starts = ((np.arange(len(embeddings)) - np.repeat(starts, counts)) * 10.0).astype(np.float64)
    tracks = [Track(p, h, "wav", 10.0 * c, None, None, None, None, None, "/lib")
              for p, h, c in zip(paths, hashes, counts, strict=True)]  # fmt: skip
    return TrackTable(
        paths, list(hashes), starts, np.asarray(counts, np.int64), segment_starts, embeddings, tracks
    )


def joined(*tables):
    counts = np.concatenate([t.counts for t in tables])
    return table_of(
        np.concatenate([t.embeddings for t in tables]), counts, [h for t in tables for h in t.hashes]
    )


class ExactNeighbours:
    """The built index's answers with its graph search made exact (every segment compared, float32): what
    the candidate rule proves is tested on this; what the graph and its float16 vectors lose, on the real
    index (its recall of a segment's neighbours is ~0.999 here, and a miss can sit at the 50th track)."""

    def __init__(self, index: ann.SegmentIndex, table: TrackTable) -> None:
        self.index, self.table = index, table
        self.owner = np.repeat(np.arange(len(table.counts)), table.counts)
        self.number = np.array([index.contents.entries[h][0] for h in table.hashes])

    def __len__(self) -> int:
        return len(self.index)

    def search(self, rows, count, expansion, threads=0):
        similarities = np.atleast_2d(rows) @ self.table.embeddings.T
        order = np.argsort(-similarities, axis=1)[:, :count]
        numbers = self.number[self.owner[order]]
        hashes = [self.index.hash_of(int(n)) for n in np.unique(numbers)]
        return hashes, numbers, np.take_along_axis(similarities, order, axis=1)


def indexes(table: TrackTable) -> tuple[ExactNeighbours, ann.SegmentIndex]:
    built = ann.SegmentIndex.build(table)
    return ExactNeighbours(built, table), built


def test_candidates_hold_the_exact_top_tracks_and_their_windows(monkeypatch):
    monkeypatch.setattr(candidates, "CLIP_FIRST", 100)  # this library's scale, not a million segments'
    table = library(1500)
    exact_neighbours, index = indexes(table)
    lookup = candidates.TrackLookup(table)
    means = [
        table.embeddings[s : s + c].mean(axis=0) for s, c in zip(table.starts, table.counts, strict=True)
    ]
    np.testing.assert_allclose(lookup.means, np.stack(means), rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(1)
    for k in (1, 1, 1, 2, 3):
        track = int(rng.integers(len(table.counts)))
        first = int(table.starts[track])
        query = normalize_rows(
            table.embeddings[first : first + k] + 0.3 * rng.standard_normal((k, 24)).astype(np.float32)
        )
        exact = window_scores(table.embeddings, table.starts, table.counts, query)
        top = top_tracks(exact.best, None, 50)
        if k == 1:  # proven by the bound: exactly the exact top, given exact neighbours
            found = candidates.candidate_scores(table, exact_neighbours, lookup, query, None, None, 50)
            assert found is not None
            assert set(top_tracks(found[0].best, found[1], 50).tolist()) == set(top.tolist())
        found = candidates.candidate_scores(table, index, lookup, query, None, None, need=50)
        assert found is not None
        scores, mask = found
        assert mask.sum() < len(mask) // 4  # candidates, not everything
        found_top = top_tracks(scores.best, mask, 50)
        # The graph's neighbours (a prompt) or a clip's candidates (closest on average, mean row's
        # neighbours): as good as measured.
        assert len(set(found_top.tolist()) & set(top.tolist())) >= (48 if k == 1 else 45)
        top = top[mask[top]]
        np.testing.assert_allclose(scores.best[top], exact.best[top], rtol=1e-6)
        np.testing.assert_array_equal(scores.best_offset[top], exact.best_offset[top])
        row = int(table.starts[top[0]])
        width = int(exact.offsets[top[0]])
        np.testing.assert_allclose(
            scores.scores[row : row + width], exact.scores[row : row + width], rtol=1e-6
        )


def test_a_filter_and_prompt_term_bias_are_honoured_among_candidates(monkeypatch):
    monkeypatch.setattr(candidates, "CLIP_FIRST", 100)
    table = library(1200, seed=2)
    exact_neighbours, index = indexes(table)
    lookup = candidates.TrackLookup(table)
    rng = np.random.default_rng(3)
    query = normalize_rows(rng.standard_normal((1, 24)).astype(np.float32))
    keep = rng.random(len(table.counts)) < 0.5
    bias = np.zeros(len(table.embeddings), np.float32)
    lifted = np.flatnonzero(~np.isin(np.arange(len(table.counts)), top_tracks(
        window_scores(table.embeddings, table.starts, table.counts, query).best, None, 400)) & keep)[:5]  # fmt: skip
    for track in lifted:  # far from the query, but the prompt's terms lift them over everything
        bias[table.starts[track] : table.starts[track] + table.counts[track]] = 2.0
    exact = window_scores(table.embeddings, table.starts, table.counts, query, bias)
    expected = top_tracks(exact.best, keep, 50)
    assert set(lifted.tolist()) <= set(expected[:5].tolist())
    for neighbours, least in ((exact_neighbours, 50), (index, 48)):  # exact given exact neighbours
        found = candidates.candidate_scores(table, neighbours, lookup, query, bias, keep, need=50)
        assert found is not None
        scores, mask = found
        assert not mask[~keep].any() and mask[lifted].all()
        assert len(set(top_tracks(scores.best, mask, 50).tolist()) & set(expected.tolist())) >= least
    # A clip: its candidates are kept tracks too, and the tracks the terms lift are among them.
    clip = normalize_rows(rng.standard_normal((3, 24)).astype(np.float32))
    exact = window_scores(table.embeddings, table.starts, table.counts, clip, bias)
    found = candidates.candidate_scores(table, index, lookup, clip, bias, keep, need=50)
    assert found is not None
    scores, mask = found
    assert not mask[~keep].any() and mask[lifted].all()
    np.testing.assert_allclose(scores.best[mask], exact.best[mask], rtol=1e-6)
    assert set(top_tracks(scores.best, mask, 5).tolist()) == set(top_tracks(exact.best, keep, 5).tolist())


def test_the_index_follows_the_catalog_incrementally_and_is_never_trusted_stale(tmp_path):
    catalog = tmp_path / "c.sqlite"
    base = library(300, seed=4)
    index, how = ann.SegmentIndex.open(catalog, ("cat", 1), "space", base)
    assert how == "built" and len(index) == len(base.embeddings)
    again, how = ann.SegmentIndex.open(catalog, ("cat", 1), "space", base)
    assert how == "loaded" and len(again) == len(index)
    # A rescan added 10 tracks (one a duplicate file of a stored content) and removed 5.
    added = library(10, seed=5, prefix="new")
    duplicate = table_of(base.embeddings[: base.counts[0]], base.counts[:1], base.hashes[:1])
    kept = table_of(base.embeddings[int(base.starts[5]) :], base.counts[5:], base.hashes[5:])
    grown = joined(kept, added, duplicate)
    updated, how = ann.SegmentIndex.open(catalog, ("cat", 2), "space", grown)
    assert how == "updated (+10 contents, -4)"  # content 0 stays: a duplicate file still has it
    assert len(updated) == len(grown.embeddings)  # each content once: track 0's vectors were kept
    folder = ann.index_root(catalog) / next(p.name for p in ann.index_root(catalog).iterdir())
    assert [p.name for p in folder.iterdir()] == [f"cat-2-v{ann.FORMAT}"]  # the old entry is gone
    assert updated.contents.entries.keys() == set(grown.hashes)
    # A query at the new state (build=False) loads it; a catalog never seen needs a build.
    assert ann.SegmentIndex.open(catalog, ("cat", 2), "space", grown, build=False)[1] == "loaded"
    assert ann.SegmentIndex.open(catalog, ("other", 1), "space", grown, build=False) == (None, "missing")
    # A content analysed again (same hash, other vectors) is replaced, not kept.
    changed = table_of(grown.embeddings.copy(), grown.counts, grown.hashes)
    first = int(changed.starts[0])
    changed.embeddings[first : first + changed.counts[0]] *= -1
    assert ann.SegmentIndex.open(catalog, ("cat", 3), "space", changed)[1] == "updated (+1 contents, -1)"
    # A torn index file, or a map that does not describe it, is rebuilt.
    entry = folder / f"cat-3-v{ann.FORMAT}"
    (entry / "index.usearch").write_bytes((entry / "index.usearch").read_bytes()[:1000])
    assert ann.SegmentIndex.open(catalog, ("cat", 3), "space", changed)[1] == "built"
    meta = json.loads((entry / "contents.json").read_text())
    meta["contents"].popitem()
    (entry / "contents.json").write_text(json.dumps(meta))
    assert ann.SegmentIndex.open(catalog, ("cat", 3), "space", changed)[1] == "built"
    # Most of the library removed: compacted by a rebuild rather than left as deleted graph nodes.
    small = table_of(
        changed.embeddings[: int(changed.counts[:50].sum())], changed.counts[:50], changed.hashes[:50]
    )
    assert ann.SegmentIndex.open(catalog, ("cat", 4), "space", small)[1] == "built"


def test_searcher_ranks_through_the_index_as_without_it(tmp_path, monkeypatch):
    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(6)
    for i in range(60):
        write_tone(folder / f"t{i:02d}.wav", 20 + 10 * (i % 3), rng.uniform(100, 5000, 3).tolist())
    catalog = Catalog(tmp_path / "catalog.sqlite")
    scan(catalog, folder, STATS, jobs=1, progress=False)
    ensure_space(catalog, IdentitySpace())
    table = catalog.load_tracks(IdentitySpace.id)
    target = catalog.music_segments(table.hashes[7])

    def ranked():
        searcher = Searcher(catalog)
        return [
            [(r.path, r.start, round(r.score, 4)) for r in searcher.rank(q, top=5, space_id=IdentitySpace.id)]
            for q in (target.embeddings[1:2], target.embeddings[0:2])
        ]

    exact = ranked()
    monkeypatch.setenv("VIML_ANN_MIN_SEGMENTS", "0")
    assert candidates.prepare_index(catalog, IdentitySpace.id)["index"] == "built"
    used = []
    original = candidates.candidate_scores
    monkeypatch.setattr(candidates, "candidate_scores", lambda *a, **k: used.append(1) or original(*a, **k))
    catalog.mark_used([str(folder / "t00.wav")])  # a new generation: the index is checked again, and kept
    assert ranked() == exact and len(used) == 2
    assert exact[0][0][0] == table.paths[7]
    catalog.close()
