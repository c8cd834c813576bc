"""Ranking semantics (windows, best offsets, short tracks), zero-shot pieces, suggest/similar, OTIO, migrations."""

from __future__ import annotations

import sqlite3
import wave

import numpy as np
import pytest
from viml.catalog import schema
from viml.catalog.scan import scan
from viml.catalog.store import Catalog
from viml.core.errors import UserFacingError
from viml.engine.music.types import MusicSegments
from viml.engine.vectors import normalize_rows
from viml.search import Filters, Searcher, SuggestRequest
from viml.search.query import zero_shot_query
from viml.search.ranking import brute_force, top_tracks, window_scores
from viml.search.spaces import ZeroShotSpace, ensure_space, segment_descriptions

STATS = "viml.demo.stats_analyzer:load"


def random_table(rng, counts):
    counts = np.array(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    embeddings = normalize_rows(rng.standard_normal((int(counts.sum()), 16)))
    return embeddings, starts, counts


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_window_scores_match_brute_force(k):
    rng = np.random.default_rng(k)
    embeddings, starts, counts = random_table(rng, [1, 2, 3, 4, 7, 12, 5, 1, 9])
    query = normalize_rows(rng.standard_normal((k, 16)))
    got = window_scores(embeddings, starts, counts, query)
    best, offsets, curves = brute_force(embeddings, starts, counts, query)
    np.testing.assert_allclose(got.best, best, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.best_offset, offsets)
    for t, curve in enumerate(curves):
        assert got.offsets[t] == len(curve)
        np.testing.assert_allclose(
            got.scores[starts[t] : starts[t] + len(curve)], curve, rtol=1e-5, atol=1e-6
        )


def test_planted_sequence_is_found_at_its_offset():
    rng = np.random.default_rng(0)
    embeddings, starts, counts = random_table(rng, [20, 30, 25])
    query = embeddings[starts[1] + 11 : starts[1] + 14]  # three segments of track 1 from offset 11
    got = window_scores(embeddings, starts, counts, query)
    assert int(np.argmax(got.best)) == 1
    assert got.best_offset[1] == 11
    assert got.best[1] == pytest.approx(1.0, abs=1e-5)


def test_top_tracks_respects_mask_and_order():
    best = np.array([0.1, 0.9, 0.5, 0.7], np.float32)
    assert top_tracks(best, None, 3).tolist() == [1, 3, 2]
    assert top_tracks(best, np.array([True, False, True, True]), 10).tolist() == [3, 2, 0]
    assert top_tracks(best, np.zeros(4, bool), 3).tolist() == []


def music(tags_rows, names=("piano", "rock", "slow")):
    tags = np.asarray(tags_rows, np.float32)
    count = len(tags)
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(1, count + 1) * 10.0,
        embeddings=np.ones((count, 4), np.float32),
        tag_probabilities={"MTT": tags},
        tag_names={"MTT": list(names)},
    )


def test_segment_descriptions_and_zero_shot_space_encode_each_text_once():
    segments = music([[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.9, 0.1, 0.5], [0.1, 0.2, 0.05]])
    texts = segment_descriptions(segments)
    assert texts[0] == "music with piano, slow"
    assert texts[2] == texts[0]
    assert texts[3] == "music with rock"  # nothing confident: the strongest tag alone
    seen: list[list[str]] = []

    def encoder(batch):
        seen.append(batch)
        return np.array([[len(t), 1.0, 0.0] for t in batch], np.float32)

    space = ZeroShotSpace(encoder, "test-encoder")
    vectors = space.embed_segments(segments)
    assert vectors.shape == (4, 3)
    assert sorted(seen[0]) == sorted(set(texts))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_zero_shot_query_mixes_picture_and_prompt_by_influence():
    frames = [np.array([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0]]), np.array([[0.0, 1.0, 0.0]])]
    prompt = np.array([0.0, 0.0, 2.0])
    picture = zero_shot_query(frames, None)
    assert picture.shape == (2, 3)
    np.testing.assert_allclose(zero_shot_query(None, prompt), [[0, 0, 1]])
    np.testing.assert_allclose(zero_shot_query(frames, prompt, influence=0.0), picture, atol=1e-6)
    # Text only: the prompt's one row, the query of the prompt alone (tests/test_influence.py).
    np.testing.assert_allclose(zero_shot_query(frames, prompt, influence=1.0), [[0, 0, 1]], atol=1e-6)
    half = zero_shot_query(frames, prompt, influence=0.5)
    assert np.all(half[:, 2] > 0.5) and np.all(half[:, 2] < 0.9)
    with pytest.raises(ValueError):
        zero_shot_query(None, None)
    # The influence range is checked once, where every surface builds its request.
    with pytest.raises(UserFacingError, match="influence"):
        SuggestRequest(prompt="calm piano", influence=1.5)
    with pytest.raises(UserFacingError, match="influence"):
        SuggestRequest(prompt="calm piano", influence=-0.1)


def write_tone(path, seconds, frequencies, rate=16000):
    """A sequence of tones, one per 10 s, so each segment of the file sounds different."""
    t = np.arange(int(rate * seconds)) / rate
    freq = np.array(frequencies)[np.minimum((t // 10).astype(int), len(frequencies) - 1)]
    signal = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * np.random.default_rng(
        len(path.name)
    ).standard_normal(len(t))
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())


class IdentitySpace:
    """The music-model embeddings themselves as a retrieval space (a stand-in bundle for these tests)."""

    id = "identity-test"

    def embed_segments(self, segments):
        return segments.embeddings


@pytest.fixture
def small_catalog(tmp_path):
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    write_tone(folder / "a.wav", 50, [110, 220, 440, 880, 1760])
    write_tone(folder / "sub" / "b.wav", 40, [3000, 150, 5000, 600])
    write_tone(folder / "c.wav", 15, [700, 2500])
    catalog = Catalog(tmp_path / "catalog.sqlite")
    scan(catalog, folder, STATS, jobs=1, progress=False)
    yield catalog, folder
    catalog.close()


def test_suggest_finds_the_best_part_of_the_right_track(small_catalog):
    catalog, folder = small_catalog
    assert ensure_space(catalog, IdentitySpace()) == 3
    assert ensure_space(catalog, IdentitySpace()) == 0  # stored: nothing to re-embed
    target = catalog.music_segments(catalog.track(folder / "a.wav").hash)
    query = target.embeddings[2:4]  # a.wav from 20 s, two segments (a 20 s clip)
    searcher = Searcher(catalog)  # no bundle: ranked in the given space
    results = searcher.rank(query, clip_seconds=20.0, top=3, space_id=IdentitySpace.id)
    assert results[0].path == str(folder / "a.wav")
    assert results[0].start == 20.0 and results[0].end == 40.0
    assert len(results[0].curve) == 4  # 5 segments, 2-segment windows
    assert results[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(r.score <= results[0].score for r in results)
    assert results[0].matched_tags and all(t["probability"] >= 0.3 for t in results[0].matched_tags)
    only_sub = searcher.rank(
        query, clip_seconds=20.0, filters=Filters(folder=str(folder / "sub")), space_id=IdentitySpace.id
    )
    assert [r.path for r in only_sub] == [str(folder / "sub" / "b.wav")]
    catalog.mark_used([str(folder / "a.wav")])
    rest = searcher.rank(
        query, clip_seconds=20.0, filters=Filters(exclude_used=True), space_id=IdentitySpace.id
    )
    assert str(folder / "a.wav") not in [r.path for r in rest]
    short = searcher.rank(
        query, clip_seconds=20.0, filters=Filters(max_duration=20), space_id=IdentitySpace.id
    )
    assert [r.path for r in short] == [str(folder / "c.wav")]


def test_similar_excludes_the_reference_and_matches_sections(small_catalog):
    catalog, folder = small_catalog
    write_tone(folder / "a_copy_edit.wav", 50, [110, 220, 440, 880, 1761])
    scan(catalog, folder, STATS, jobs=1, progress=False)
    searcher = Searcher(catalog)
    tracks, segments = searcher.similar(str(folder / "a.wav"))
    assert str(folder / "a.wav") not in [t.path for t in tracks]
    assert tracks[0].path == str(folder / "a_copy_edit.wav")
    section, _ = searcher.similar(str(folder / "a.wav"), start=10, end=30)
    assert section[0].path == str(folder / "a_copy_edit.wav") and section[0].start == 10.0
    assert segments and segments[0].path == str(folder / "a_copy_edit.wav")


def test_old_catalog_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path, isolation_level=None)
    for statement in schema.MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    with Catalog(path) as catalog:
        assert catalog.connection.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert catalog.used_paths() == set()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(UserFacingError, match="newer"):
        Catalog(path)
