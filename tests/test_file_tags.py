"""File tags: one class per container format reads what the catalog needs and writes genres/moods in
place, keeping the file's identity (symlinks, hard links, owner, group, mode); failures put the bytes back."""

from __future__ import annotations

import os
from dataclasses import replace

import mutagen
import pytest
from media_factory import write_audio, write_random_bytes
from viml.catalog.analysis import read_file_tags
from viml.catalog.store import FileTags
from viml.engine.music import filetags
from viml.engine.music.filetags import TagValues, TagWriteError, TrackTags, inplace, read_file, write_tags

CODECS = {".aiff": "pcm_s16be", ".wv": "wavpack"}


def audio_file(path, seconds=1.0):
    return write_audio(path, seconds=seconds, codec=CODECS.get(path.suffix))


def tag_with_mutagen(path, title, artist, album, genre, bpm):
    """Tags as another tagger would write them, in each format's own keys."""
    from mutagen.id3 import TALB, TBPM, TCON, TIT2, TPE1

    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if path.suffix in (".mp3", ".wav", ".aiff"):
        for frame in (TIT2, TPE1, TALB, TCON, TBPM):
            audio.tags.delall(frame.__name__)
        for frame, text in ((TIT2, title), (TPE1, artist), (TALB, album), (TCON, genre), (TBPM, bpm)):
            audio.tags.add(frame(encoding=3, text=text))
    elif path.suffix == ".m4a":
        audio.tags.update({"\xa9nam": title, "\xa9ART": artist, "\xa9alb": album, "\xa9gen": genre})
        audio.tags["tmpo"] = [int(bpm)]
    else:
        audio.tags.update({"TITLE": title, "ARTIST": artist, "ALBUM": album, "GENRE": genre, "BPM": bpm})
    audio.save()


@pytest.mark.parametrize(
    ("suffix", "format_name"),
    [(".mp3", "mp3"), (".flac", "flac"), (".m4a", "mp4"), (".opus", "oggopus"), (".wav", "wave"),
     (".aiff", "aiff")],
)  # fmt: skip
def test_each_format_reads_the_catalog_fields_and_appends_genres_and_moods(tmp_path, suffix, format_name):
    path = audio_file(tmp_path / f"song{suffix}")
    tag_with_mutagen(path, "Title", "Artist", "Album", "jazz", "121")
    info = read_file(path)
    assert (info.format, info.writable) == (format_name, True)
    assert info.tags == TrackTags("Title", "Artist", "Album", ("jazz",), (), 121.0)
    assert abs(info.duration - 1.0) < 0.1
    assert read_file_tags(str(path)) == (
        format_name,
        info.duration,
        FileTags("Title", "Artist", "Album", "jazz", 121.0),
    )

    assert write_tags(path, TagValues(("Rock", "JAZZ"), ("happy",))) == TagValues(
        ("jazz", "Rock"), ("happy",)
    )
    assert read_file(path).tags == TrackTags("Title", "Artist", "Album", ("jazz", "Rock"), ("happy",), 121.0)
    assert write_tags(path, TagValues(("rock",), ())) == TagValues(("jazz", "Rock"), ("happy",))  # no-op
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_id3v23_genre_with_a_slash_stays_one_genre_and_the_version_and_other_frames_stay(tmp_path):
    """Issue 19 item 9: v2.3 "Drum/Bass" was read as two genres and rewritten as two."""
    from mutagen.id3 import ID3, TCON, TXXX, TYER

    path = write_audio(tmp_path / "song.mp3", seconds=1.0)
    tags = ID3()
    tags.add(TCON(encoding=1, text=["Drum/Bass"]))
    tags.add(TXXX(encoding=1, desc="MOOD", text=["sad/slow"]))
    tags.add(TYER(encoding=1, text=["1999"]))
    tags.save(path, v2_version=3)
    assert read_file(path).tags.values == TagValues(("Drum/Bass",), ("sad/slow",))

    assert write_tags(path, TagValues(("rock",), ("happy",))) == TagValues(
        ("Drum/Bass", "rock"), ("sad/slow", "happy")
    )
    raw = ID3(path, translate=False)
    assert raw.version[:2] == (2, 3)
    assert raw["TCON"].text == ["Drum/Bass", "rock"] and raw["TXXX:MOOD"].text == ["sad/slow", "happy"]
    assert "TYER" in raw and "TDRC" not in raw and "TMOO" not in raw  # still a v2.3 tag throughout
    assert read_file(path).tags.values == TagValues(("Drum/Bass", "rock"), ("sad/slow", "happy"))
    assert write_tags(path, TagValues(("Drum/Bass",), ())) == TagValues(
        ("Drum/Bass", "rock"), ("sad/slow", "happy")
    )


def test_id3_numeric_genre_references_read_as_names(tmp_path):
    from mutagen.id3 import ID3, TCON

    path = write_audio(tmp_path / "song.mp3", seconds=1.0)
    tags = ID3()
    tags.add(TCON(encoding=3, text=["(17)", "52"]))
    tags.save(path)
    assert read_file(path).tags.genres == ("Rock", "Electronic")


def test_other_formats_are_read_generically_and_never_written(tmp_path):
    path = audio_file(tmp_path / "song.wv")  # WavPack: APEv2 tags
    audio = mutagen.File(path)
    audio.tags.update({"Title": "T", "Artist": "A", "Genre": "Drum/Bass\0rock", "BPM": "99"})
    audio.save()
    info = read_file(path)
    assert (info.format, info.writable) == ("wavpack", False)
    assert info.tags == TrackTags("T", "A", None, ("Drum/Bass", "rock"), (), 99.0)
    before = path.read_bytes()
    with pytest.raises(TagWriteError, match="wavpack files is not supported"):
        write_tags(path, TagValues(("x",), ()))
    assert path.read_bytes() == before


def test_hostile_files_read_as_nothing(tmp_path):
    for path in (write_random_bytes(tmp_path / "junk.mp3"), tmp_path / "missing.flac"):
        assert read_file(path) is None
        assert read_file_tags(str(path)) == (None, None, FileTags())
    broken = write_random_bytes(tmp_path / "broken.flac")
    with pytest.raises(TagWriteError):
        write_tags(broken, TagValues(("rock",), ()))


def test_a_symlinked_track_tags_the_real_file_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    real = write_audio(tmp_path / "real" / "song.flac", seconds=1.0)
    link = tmp_path / "links" / "song.flac"
    link.symlink_to(real)
    write_tags(link, TagValues(("rock",), ()))
    assert link.is_symlink() and link.resolve() == real
    assert read_file(real).tags.genres == ("rock",)
    assert os.listdir(tmp_path / "links") == ["song.flac"] and os.listdir(tmp_path / "real") == ["song.flac"]


def test_hard_links_keep_one_inode_and_both_names_see_the_tags(tmp_path):
    first = write_audio(tmp_path / "a.mp3", seconds=1.0)
    second = tmp_path / "b.mp3"
    os.link(first, second)
    inode = first.stat().st_ino
    write_tags(first, TagValues(("rock",), ("sad",)))
    assert first.stat().st_ino == second.stat().st_ino == inode and first.stat().st_nlink == 2
    assert read_file(second).tags.values == TagValues(("rock",), ("sad",))


def test_owner_group_and_mode_stay_and_mtime_reflects_the_change(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = write_audio(tmp_path / "a.m4a", seconds=1.0)
    os.chown(path, 1234, 4321)
    os.chmod(path, 0o640)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    write_tags(path, TagValues(("rock",), ()))
    after = path.stat()
    assert (after.st_uid, after.st_gid, after.st_mode & 0o7777) == (1234, 4321, 0o640)
    assert after.st_mtime_ns > 1_000_000_000  # the content changed, so backups and rescans see it


@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".m4a"])
def test_a_failed_write_puts_back_the_original_bytes_and_times_in_the_same_inode(
    tmp_path, monkeypatch, suffix
):
    path = write_audio(tmp_path / f"a{suffix}", seconds=1.0)
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    before, inode = path.read_bytes(), path.stat().st_ino

    def fail_after_writing(point):
        if point == "synced":
            assert path.read_bytes() != before  # the tags really were written in place
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(inplace, "_reached", fail_after_writing)
    with pytest.raises(TagWriteError, match="disk on fire.*original bytes were put back"):
        write_tags(path, TagValues(("rock",), ()))
    assert path.read_bytes() == before
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, 2_000_000_000)
    assert os.listdir(tmp_path) == [path.name]


def test_verification_failure_is_undone(tmp_path, monkeypatch):
    path = write_audio(tmp_path / "a.flac", seconds=1.0)
    before = path.read_bytes()
    real_read = filetags.read_file
    monkeypatch.setattr(filetags, "read_file", lambda p: replace(real_read(p), tags=TrackTags(genres=("x",))))
    with pytest.raises(TagWriteError, match="read back differently"):
        write_tags(path, TagValues(("rock",), ()))
    assert path.read_bytes() == before


def test_recover_restores_backups_and_removes_unfinished_copies(tmp_path):
    good = write_audio(tmp_path / "a.flac", seconds=1.0)
    original = good.read_bytes()
    os.utime(good, ns=(5_000_000_000, 5_000_000_000))
    inplace._make_backup(good)  # as a killed write leaves it...
    with open(good, "r+b") as handle:  # ...with the file half rewritten
        handle.seek(100)
        handle.write(b"\0" * 5000)
    stale = tmp_path / ".b.mp3.k2j4h1.viml-tmp"
    stale.write_bytes(b"partial copy")
    orphan = tmp_path / ".gone.flac.viml-backup"
    orphan.write_bytes(b"backup of a file the user deleted")
    link = tmp_path / "elsewhere"
    link.mkdir()
    (link / "a.flac").symlink_to(good)

    lines = filetags.recover([link / "a.flac"])
    assert good.read_bytes() == original and good.stat().st_mtime_ns == 5_000_000_000
    assert not stale.exists() and orphan.exists()
    assert len(lines) == 3 and "undid an interrupted tag write" in " ".join(lines)
    assert any("removed an unfinished copy" in line and stale.name in line for line in lines)
    assert any("kept this backup" in line and "gone.flac" in line for line in lines)
    again = filetags.recover([good])
    assert len(again) == 1 and "kept this backup" in again[0]


def test_write_tags_undoes_an_interrupted_write_of_the_same_file_first(tmp_path):
    path = write_audio(tmp_path / "a.mp3", seconds=1.0)
    original, length = path.read_bytes(), mutagen.File(path).info.length
    inplace._make_backup(path)
    path.write_bytes(original[:500])  # broken: only the start of the file is left
    assert write_tags(path, TagValues(("rock",), ())) == TagValues(("rock",), ())
    assert os.listdir(tmp_path) == [path.name]
    assert mutagen.File(path).info.length == length and path.stat().st_size > len(original)
