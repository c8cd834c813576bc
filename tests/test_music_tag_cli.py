"""`viml tag` end to end on real files written at test time, and safe Picard-convention tag writing."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from media_factory import write_audio, write_random_bytes, write_zero_bytes
from music_helpers import converted_models, install_models
from viml.catalog.store import Catalog, default_catalog_path
from viml.demo.reference_audio import render_piece
from viml.engine.music.filetags import TagValues, TagWriteError, inplace, read_file, write_tags

from viml.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return converted_models(tmp_path_factory)


@pytest.fixture
def library(tmp_path, models, isolated_viml_home):
    install_models(models, isolated_viml_home)
    rock = render_piece("rock", 12.0, 44100) * 0.8
    techno = render_piece("techno", 12.0, 48000) * 0.8
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    write_audio(root / "rock.mp3", sample_rate=44100, signal=np.stack([rock, rock]))
    write_audio(root / "sub" / "techno.flac", sample_rate=48000, signal=techno[None])
    write_audio(root / "sub" / "techno.m4a", sample_rate=48000, signal=np.stack([techno, techno]))
    write_audio(
        root / "six.wav", sample_rate=96000, signal=np.tile(render_piece("piano", 3.0, 96000), (6, 1))
    )
    write_audio(root / "phone.wav", sample_rate=8000, signal=render_piece("piano", 3.0, 8000)[None])
    write_audio(root / "silent.flac", sample_rate=16000, signal=np.zeros((1, 32000), np.float32))
    write_audio(root / "tiny.wav", sample_rate=16000, signal=np.full((1, 100), 0.5, np.float32))
    write_zero_bytes(root / "empty.mp3")
    write_random_bytes(root / "noise.ogg")
    (root / "notes.txt").write_text("not audio")
    return root


def test_tag_folder_outputs_table_json_csv_and_resumes(library, tmp_path, capsys, isolated_viml_home):
    json_path, csv_path = tmp_path / "tags.json", tmp_path / "tags.csv"
    code = main(["tag", str(library), "--json", str(json_path), "--csv", str(csv_path)])
    assert code == 1  # some files are broken on purpose
    table = capsys.readouterr().out
    tracks = {t["path"].split("music/")[1]: t for t in json.loads(json_path.read_text())["tracks"]}
    assert set(tracks) == {"rock.mp3", "sub/techno.flac", "sub/techno.m4a", "six.wav", "phone.wav",
                           "silent.flac", "tiny.wav", "empty.mp3", "noise.ogg"}  # fmt: skip
    assert tracks["silent.flac"]["status"] == "silent"
    for broken in ("empty.mp3", "noise.ogg", "tiny.wav"):
        assert tracks[broken]["status"] == "error" and tracks[broken]["reason"], broken
    techno = tracks["sub/techno.flac"]
    assert techno["status"] == "tagged" and len(techno["segments"]) == 1  # a 2 s tail is too short
    assert "techno" in {t["tag"] for t in techno["tags"]} and "techno" in techno["genres"]
    assert "piano" in {t["tag"] for t in tracks["six.wav"]["tags"]}
    assert "techno" in table and "error" in table
    rows = list(csv.DictReader(csv_path.open()))
    assert sum(r["path"].endswith("techno.flac") for r in rows) == 1

    # The results live in the catalog (no second cache): a second run analyses nothing and answers the same.
    assert not list(isolated_viml_home.glob("cache/music_tags/*"))
    with Catalog(default_catalog_path(), must_exist=True) as catalog:
        assert catalog.counts()["tracks"] == 5 and catalog.counts()["errors"] == 4
    assert main(["tag", str(library), "--json", str(json_path)]) == 1
    again = {t["path"].split("music/")[1]: t for t in json.loads(json_path.read_text())["tracks"]}
    assert again == tracks
    with Catalog(default_catalog_path()) as catalog:
        (last,) = catalog.connection.execute(
            "SELECT summary FROM scan_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    summary = json.loads(last)
    assert (summary["analysed"], summary["unchanged"], summary["still_failing"]) == (0, 5, 4)


def test_write_tags_is_a_dry_run_unless_applied(library, capsys):
    files = [library / "rock.mp3", library / "sub" / "techno.flac", library / "sub" / "techno.m4a"]
    before = {f: f.read_bytes() for f in files}
    main(["tag", *map(str, files), "--write-tags"])
    assert "would write" in capsys.readouterr().out
    assert {f: f.read_bytes() for f in files} == before
    assert main(["tag", *map(str, files), "--write-tags", "--apply"]) == 0
    for f in files:
        assert read_file(f).tags.genres, f
    assert "techno" in read_file(files[1]).tags.genres
    assert not list(library.rglob(".*.viml-*"))


def test_write_tags_first_undoes_writes_a_kill_interrupted(library, capsys):
    song = library / "rock.mp3"
    original = song.read_bytes()
    inplace._make_backup(song)  # what a write killed halfway leaves: a backup and a broken file
    song.write_bytes(original[:1000])
    stale = library / "sub" / ".techno.flac.a1b2c3.viml-tmp"
    stale.write_bytes(b"an unfinished backup")
    main(["tag", str(song), str(library / "sub" / "techno.flac"), "--write-tags"])
    err = capsys.readouterr().err
    assert f"{song}: undid an interrupted tag write" in err and f"{stale}: removed an unfinished copy" in err
    assert song.read_bytes() == original and not list(library.rglob(".*.viml-*"))


def test_id3v23_mood_goes_to_txxx_and_existing_values_stay(tmp_path):
    from mutagen.id3 import ID3, TCON

    path = write_audio(tmp_path / "song.mp3", seconds=1.0)
    tags = ID3()
    tags.add(TCON(encoding=3, text=["jazz"]))
    tags.save(path, v2_version=3)
    after = write_tags(path, TagValues(("rock",), ("happy", "catchy")))
    assert after == TagValues(("jazz", "rock"), ("happy", "catchy"))
    saved = ID3(path)
    assert saved.version[:2] == (2, 3) and "TXXX:MOOD" in saved and "TMOO" not in saved


def test_vorbis_and_mp4_moods_use_picard_keys(tmp_path):
    import mutagen

    flac = write_audio(tmp_path / "a.flac", seconds=1.0)
    m4a = write_audio(tmp_path / "a.m4a", seconds=1.0)
    write_tags(flac, TagValues(("folk",), ("sad",)))
    write_tags(m4a, TagValues(("folk",), ("sad",)))
    assert mutagen.File(flac).tags["MOOD"] == ["sad"]
    assert bytes(mutagen.File(m4a).tags["----:com.apple.iTunes:MOOD"][0]) == b"sad"
    assert mutagen.File(m4a).tags["\xa9gen"] == ["folk"]


def test_broken_or_unsupported_files_are_left_untouched(tmp_path):
    broken = write_random_bytes(tmp_path / "broken.flac")
    original = broken.read_bytes()
    with pytest.raises(TagWriteError):
        write_tags(broken, TagValues(("rock",), ()))
    assert broken.read_bytes() == original
    with pytest.raises(TagWriteError, match="not supported"):
        write_tags(write_audio(tmp_path / "a.wv", seconds=0.5, codec="wavpack"), TagValues(("rock",), ()))
    assert not list(tmp_path.glob(".*.viml-*"))
