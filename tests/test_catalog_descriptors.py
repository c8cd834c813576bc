"""Measured descriptors in the catalog (schema v5): stored per content with its segments, read back per
content and as library columns; catalogs from before them upgrade in place and read NaN until a rescan
with the current analysis (another analysis id) fills them."""

from __future__ import annotations

import sqlite3

import numpy as np
from hostile_media import fake_music_model
from media_factory import write_audio
from viml.catalog import schema
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, Fingerprint
from viml.engine.music.descriptors import DESCRIPTORS, descriptor_columns
from viml.engine.music.types import MusicSegments

ANALYZER = "test_catalog_descriptors:load"


class FakeModelAnalyzer:
    """The real streaming analysis (front end, descriptors) with fake taggers."""

    def __init__(self, analysis_id: str = "fake-descriptors") -> None:
        self.id = analysis_id
        self.model = fake_music_model()

    def analyze_file(self, path: str) -> MusicSegments:
        return self.model.analyze_file(path)


class OldAnalyzer(FakeModelAnalyzer):
    """The same under another id, measuring no descriptors: what catalogs held before them."""

    def analyze_file(self, path: str) -> MusicSegments:
        music = super().analyze_file(path)
        return MusicSegments(
            music.starts, music.ends, music.embeddings, music.tag_probabilities, music.tag_names
        )


def load() -> FakeModelAnalyzer:
    return FakeModelAnalyzer()


def load_old() -> FakeModelAnalyzer:
    return OldAnalyzer("fake-no-descriptors")


def segments(count: int, descriptors: bool = True) -> MusicSegments:
    values = {name: np.arange(count, dtype=np.float32) + i for i, name in enumerate(DESCRIPTORS)}
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(count) * 10.0 + 10,
        embeddings=np.ones((count, 4), np.float32),
        tag_probabilities={"T": np.zeros((count, 2), np.float32)},
        tag_names={"T": ["a", "b"]},
        descriptors=values if descriptors else {},
    )


def fingerprint(name: str) -> Fingerprint:
    return Fingerprint(path=f"/music/{name}.flac", size=1, mtime_ns=1, hash=name * 8)


def test_descriptors_are_stored_and_read_back_aligned(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as catalog:
        run = catalog.start_run("/music", "x")
        catalog.write_analysis(fingerprint("a"), "x", segments(3), run)
        catalog.write_analysis(fingerprint("b"), "x", segments(2, descriptors=False), run)
        catalog.write_analysis(fingerprint("c"), "x", segments(2), run)
        stored = catalog.music_segments("a" * 8)
        np.testing.assert_array_equal(stored.descriptors["brightness"], [1, 2, 3])
        assert catalog.music_segments("b" * 8).descriptors == {}
        table = catalog.load_tracks(cache=False)
        columns = catalog.segment_descriptors(table)
        assert set(columns) == set(DESCRIPTORS)
        np.testing.assert_array_equal(columns["loudness"], [0, 1, 2, np.nan, np.nan, 0, 1])
        scores = descriptor_columns(columns, table.starts, table.counts)
        assert all(len(column) == 7 for column in scores.values())
        # a re-analysis replaces them, with its segments
        before = catalog.state()[1]
        catalog.write_analysis(fingerprint("a"), "x", segments(1), run)
        assert catalog.music_segments("a" * 8).descriptors["onset_rate"].tolist() == [2.0]
        assert catalog.state()[1] > before


def test_an_older_catalog_upgrades_and_reads_nan_until_rescanned(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rising = rng.uniform(-1, 1, 16000 * 30) * np.geomspace(0.003, 0.9, 16000 * 30)  # +16 LU per segment
    write_audio(folder / "rising.flac", signal=rising[None].astype(np.float32), sample_rate=16000)
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:  # analysed before descriptors existed
        scan(catalog, folder, "test_catalog_descriptors:load_old", jobs=1, progress=False)
    connection = sqlite3.connect(path)  # ... and stored by a ViML whose schema stopped at version 4
    connection.executescript(
        "DROP TABLE descriptors; DROP TABLE rhythm; DROP TABLE used_marks; DROP TABLE IF EXISTS waveforms; "
        "DROP TABLE IF EXISTS measure_failures; "
        "CREATE TABLE used_tracks (path TEXT PRIMARY KEY, used_at REAL NOT NULL, note TEXT); "
        "PRAGMA user_version = 4;"
    )
    connection.close()
    with Catalog(path) as catalog:
        assert catalog.connection.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        table = catalog.load_tracks(cache=False)
        assert catalog.segment_descriptors(table) == {}  # nothing measured yet
        assert descriptor_columns({}, table.starts, table.counts)["loud"].tolist() == [0, 0, 0]
        summary = scan(catalog, folder, ANALYZER, jobs=1, progress=False)  # another analysis id
        assert summary.analysis == "fake-descriptors"
        loudness = catalog.segment_descriptors(catalog.load_tracks(cache=False))["loudness"]
        assert len(loudness) == 3 and (np.diff(loudness) > 5).all(), loudness


def test_descriptors_are_the_migration_after_the_words_one():
    assert schema.SCHEMA_VERSION >= 6  # 6: the rhythm table (tests/test_rhythm.py), 7: used marks
    assert any("CREATE TABLE descriptors" in str(step) for step in schema.MIGRATIONS[4])
    assert any("CREATE TABLE rhythm" in str(step) for step in schema.MIGRATIONS[5])
    assert any("words_fts" in str(step) for step in schema.MIGRATIONS[3])
