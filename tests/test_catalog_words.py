"""Every word the library holds about a track, in the catalog's FTS5 index (issue 13): file tags, folder and
file names; kept current by the incremental scan; older catalogs migrated; queries never inject FTS syntax."""

from __future__ import annotations

import os
import re
import sqlite3

import mutagen
import numpy as np
import pytest
from media_factory import write_audio, write_random_bytes
from viml.catalog import analysis, schema, words
from viml.catalog.scan import scan
from viml.catalog.store import Catalog, FileTags, Fingerprint
from viml.engine.music.types import MusicSegments

STATS = "viml.demo.stats_analyzer:load"


def tag(path, **values):
    audio = mutagen.File(path)
    for key, value in values.items():
        audio[key.upper()] = value
    audio.save()


def rescan(catalog, folder):
    return scan(catalog, folder, STATS, jobs=1, progress=False)


def music(count=1):
    names = {"T": ["a", "b"]}
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(1, count + 1) * 10.0,
        embeddings=np.ones((count, 4), np.float32),
        tag_probabilities={"T": np.zeros((count, 2), np.float32)},
        tag_names=names,
    )


def add_track(catalog, path, index, **fields):
    """A catalogued track without a file: its words are `fields` (field -> values)."""
    fp = Fingerprint(
        path=path, size=1, mtime_ns=index, hash=f"{index:040x}", format="flac", duration=10.0,
        tags=FileTags(title=next(iter(fields.get("title", ())), None), words=fields),
    )  # fmt: skip
    catalog.write_analysis(fp, "synthetic", music(), 1)


def test_file_and_folder_names_split_into_words():
    assert words.split_name("Battle_Theme_02") == "battle theme 02"
    assert words.split_name("darkSynthLoop-v2 (final).mix") == "dark synth loop v 2 final mix"
    assert words.split_name("HTMLParser") == "html parser"
    assert words.split_name("ÉtéNoir日本語") == "été noir 日本語"
    folder, name = words.path_words("/home/me/Music/Epic Cues/TrailerMusic/Vol.3/Battle_Theme_02.wav")
    assert (folder, name) == ("epic cues trailer music vol 3", "battle theme 02")  # the last 3 folders
    assert words.path_words(b"/m/Caf\xe9 Bar/Track\xff01.wav") == ("m caf bar", "track 01")  # not UTF-8
    assert words.path_words("/m/" + os.fsdecode(b"X\xffY") + "/a.wav") == ("m x y", "a")  # surrogates


def test_a_scan_indexes_every_word_and_a_tag_edit_changes_the_matches(tmp_path):
    folder = tmp_path / "Music" / "Film" / "Epic Cues"
    folder.mkdir(parents=True)
    tagged = write_audio(folder / "cue1.flac", seconds=1.0)
    tag(tagged, title="Final Clash", genre=["Ambient", "Dark Techno"], mood="tense", comment="strings swell")
    untagged = write_audio(folder / "Battle_Theme_02.wav", seconds=1.0)
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert rescan(catalog, tmp_path).analysed == 2
        first, second = str(tagged), str(untagged)
        assert catalog.word_matches("techno")[first].hits == (("genre", "Techno"),)  # not the first genre
        assert set(catalog.word_matches("swelling strings")[first].hits) == {
            ("comment", "strings"),
            ("comment", "swell"),
        }  # stemmed
        battle = catalog.word_matches("battles theme")
        assert list(battle) == [second] and battle[second].fields == {"filename": ("battle", "theme")}
        assert set(catalog.word_matches("epic")) == {first, second}  # the folder
        texts = catalog.track_words([first, second, "/not/catalogued"])
        assert texts[first] == (
            "title: Final Clash. genre: Ambient; Dark Techno. mood: tense. comment: strings swell. "
            "folder: music film epic cues. file name: cue 1"
        )
        assert texts[second] == "folder: music film epic cues. file name: battle theme 02" and len(texts) == 2

        tag(tagged, comment="harp glissando", genre=["Ambient"])
        assert rescan(catalog, tmp_path).analysed == 1  # the edit changed the bytes: analysed again
        assert first not in catalog.word_matches("swell") and first not in catalog.word_matches("techno")
        assert catalog.word_matches("harp")[first].hits == (("comment", "harp"),)

        untagged.unlink()
        write_random_bytes(tagged)  # now unreadable: an error row, and no words
        summary = rescan(catalog, tmp_path)
        assert summary.removed == 1 and len(summary.failures) == 1
        assert catalog.word_matches("epic harp battle") == {}
        assert catalog.connection.execute("SELECT COUNT(*) FROM track_words").fetchone()[0] == 0
        assert catalog.connection.execute("SELECT COUNT(*) FROM words_fts").fetchone()[0] == 0


def index_state(catalog):
    c = catalog.connection
    return (
        c.execute("SELECT * FROM track_words ORDER BY id").fetchall(),
        c.execute(f"SELECT rowid, {', '.join(words.COLUMNS)} FROM words_fts ORDER BY rowid").fetchall(),
    )


def test_an_unchanged_rescan_reads_no_tags_and_writes_no_words(tmp_path, monkeypatch):
    for index in range(3):
        tag(write_audio(tmp_path / f"t{index}.flac", seconds=1.0), title=f"Song {index}", mood="calm")
    with Catalog(tmp_path / "c.sqlite") as catalog:
        rescan(catalog, tmp_path)
        before = index_state(catalog)
        writes = []
        monkeypatch.setattr(Catalog, "_write_words", lambda *args: writes.append(args))
        monkeypatch.setattr(analysis, "read_file_tags", lambda path: pytest.fail(f"read {path}"))
        summary = rescan(catalog, tmp_path)
        assert (summary.unchanged, summary.analysed, writes) == (3, 0, [])
        assert index_state(catalog) == before
        os.utime(tmp_path / "t0.flac")  # touched: same bytes, so the same words are not written again
        monkeypatch.undo()
        rescan(catalog, tmp_path)
        assert index_state(catalog) == before


def old_catalog(path, files):
    """A schema v3 catalog (before words existed) holding `files` as tracks analysed by the stats analyzer."""
    connection = sqlite3.connect(path)
    for version in range(3):
        for statement in schema.MIGRATIONS[version]:
            connection.execute(statement)
    connection.execute("INSERT INTO contents VALUES ('h', 'stats-v1', 1.0, 1, 4, 0)")
    for file, title, genre in files:
        info = os.stat(file)
        connection.execute(
            "INSERT INTO tracks (path, path_raw, folder, size, mtime_ns, hash, format, duration, title, "
            "genre, updated_at) VALUES (?, ?, ?, ?, ?, 'h', 'flac', 1.0, ?, ?, 0)",
            (str(file), os.fsencode(file), str(file.parent), info.st_size, info.st_mtime_ns, title, genre),
        )
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()


def test_an_older_catalog_is_indexed_from_its_columns_then_the_scan_reads_the_tags_only(
    tmp_path, monkeypatch
):
    folder = tmp_path / "Library"
    folder.mkdir()
    first = write_audio(folder / "Night_Drive.flac", seconds=1.0)
    tag(first, title="Neon", genre=["Synthwave", "Retro"], comment="late night highway")
    second = write_audio(folder / "b.flac", seconds=1.0)
    unreadable = write_random_bytes(folder / "c.mp3")  # catalogued once; its tags no longer read
    old_catalog(
        tmp_path / "c.sqlite",
        [(first, "Neon", "Synthwave"), (second, None, None), (unreadable, "Kept", None)],
    )
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert catalog.connection.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert catalog.word_matches("neon synthwave drive")[str(first)].fields == {
            "title": ("Neon",),
            "genre": ("Synthwave",),
            "filename": ("drive",),
        }
        assert catalog.word_matches("highway") == {}  # the old catalog never stored comments
        versions = {row[0] for row in catalog.connection.execute("SELECT version FROM track_words")}
        assert versions == {0}
        assert catalog.tracks_with_old_words(str(tmp_path)) == {str(first), str(second), str(unreadable)}

        monkeypatch.setattr(analysis, "worker_fingerprint", lambda path: pytest.fail(f"hashed {path}"))
        summary = rescan(catalog, tmp_path)
        assert (summary.unchanged, summary.analysed, summary.linked, summary.touched) == (3, 0, 0, 0)
        assert catalog.word_matches("highway")[str(first)].hits == (("comment", "highway"),)
        assert catalog.word_matches("retro")[str(first)].hits == (("genre", "Retro"),)
        assert catalog.tracks_with_old_words(str(tmp_path)) == set()
        assert catalog.track(first).title == "Neon" and catalog.track(unreadable).title == "Kept"
        assert catalog.word_matches("kept")[str(unreadable)].hits == (("title", "Kept"),)  # its columns
        monkeypatch.setattr(analysis, "read_file_tags", lambda path: pytest.fail(f"read {path}"))
        rescan(catalog, tmp_path)  # done once: the next scan reads no tags


HOSTILE = [
    '"', '""', '"unbalanced', "NEAR(storm night, 2)", "NEAR", "*", "storm*", "-drums", "drums -", "(", ")",
    "(storm OR night)", "title:storm", "{title artist}: storm", "^storm", "storm AND", "OR", "NOT storm",
    "AND OR NOT", "'; DROP TABLE tracks; --", "\x00storm", "+", "::", "storm\"*\"", "café", "CAFE", "日本語",
    "l'été", "ö" * 300, "storm " * 200, "",
]  # fmt: skip


@pytest.fixture
def library(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as catalog:
        add_track(catalog, "/m/Weather/storm.flac", 1, title=["Storm Night"], genre=["Drums"])
        add_track(catalog, "/m/Cafe/a.flac", 2, title=["Café Noir"], comment=["NEAR the end"])
        add_track(catalog, "/m/Japan/b.flac", 3, title=["日本語"], keywords=["AND OR NOT"])
        add_track(catalog, "/m/Summer/c.flac", 4, title=["L'été"], mood=["title"])
        yield catalog


@pytest.mark.parametrize("query", HOSTILE)
def test_queries_are_words_never_fts_syntax(library, query):
    expression = words.match_expression(query)
    assert expression is None or re.fullmatch(
        r'"[^"\s*():^{}+-]+"\*?( OR "[^"\s*():^{}+-]+"\*?)*', expression
    )
    matches = library.word_matches(query)
    assert all(match.score > 0 for match in matches.values())
    assert library.connection.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 4


def test_operators_and_non_ascii_are_matched_as_plain_words(library):
    def found(query):
        return set(library.word_matches(query))

    assert found("NEAR(storm night, 2)") == {"/m/Weather/storm.flac", "/m/Cafe/a.flac"}
    assert found("-drums") == {"/m/Weather/storm.flac"}  # negation is the caller's business
    assert found("CAFE") == found("café") == {"/m/Cafe/a.flac"}  # case and diacritics folded
    assert found("日本語") == {"/m/Japan/b.flac"}
    assert found("l'été") == {"/m/Summer/c.flac"}
    assert found("title:noir") == {"/m/Summer/c.flac", "/m/Cafe/a.flac"}  # "title" is a word here
    assert found("NOT") == {"/m/Japan/b.flac"} and found("") == found("*") == set()
    assert found("the of and") == {"/m/Cafe/a.flac", "/m/Japan/b.flac"}  # only function words: kept


def test_bm25_weights_put_a_title_above_a_folder_and_limit_keeps_the_best(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as catalog:
        add_track(catalog, "/m/Storm/x.flac", 1, title=["Quiet"])
        add_track(catalog, "/m/Calm/y.flac", 2, title=["Storm"])
        for index in range(3, 13):
            add_track(catalog, f"/m/Other/z{index}.flac", index, title=[f"Song {index}"])
        matches = catalog.word_matches("storm")
        assert list(matches) == ["/m/Calm/y.flac", "/m/Storm/x.flac"]
        assert matches["/m/Calm/y.flac"].score > matches["/m/Storm/x.flac"].score > 0
        assert list(catalog.word_matches("storm", limit=1)) == ["/m/Calm/y.flac"]
        assert catalog.word_matches("storm", limit=0) == {}
