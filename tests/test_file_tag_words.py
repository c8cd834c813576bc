"""Every text field of a file's tags, per container (issue 13): TrackTags.words holds title, artist, album,
album artist, every genre, mood, comment/description, grouping, keywords, BPM, key, language and composer;
bytes that are not UTF-8 never raise; a WAV file's RIFF INFO chunk is read too."""

from __future__ import annotations

import struct

import mutagen
import pytest
from media_factory import write_audio, write_random_bytes
from viml.catalog.analysis import read_file_tags
from viml.engine.music.filetags import TagValues, read_file, riff, write_tags

EVERY_FIELD = {
    "title": ("Final Clash",),
    "artist": ("Nova",),
    "album": ("Skies",),
    "album_artist": ("Various",),
    "genre": ("Ambient", "Dark Techno"),
    "mood": ("tense", "brooding"),
    "comment": ("strings swell", "written for a chase"),
    "grouping": ("Trailer Cues",),
    "keywords": ("epic", "battle"),
    "bpm": ("128",),
    "key": ("Am",),
    "language": ("eng",),
    "composer": ("J. Doe",),
}


def stereo(path):
    return write_audio(path, seconds=0.5, channels=2)  # FFmpeg's Vorbis encoder writes stereo only


def replace_bytes(path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))


def id3_tag(version: int):
    from mutagen.id3 import (
        COMM,
        ID3,
        TALB,
        TBPM,
        TCOM,
        TCON,
        TIT1,
        TIT2,
        TKEY,
        TLAN,
        TMOO,
        TPE1,
        TPE2,
        TXXX,
    )

    tags = ID3()
    for frame, text in (
        (TIT2, ["Final Clash"]), (TPE1, ["Nova"]), (TALB, ["Skies"]), (TPE2, ["Various"]),
        (TCON, ["Ambient", "Dark Techno"]), (TIT1, ["Trailer Cues"]), (TBPM, ["128"]), (TKEY, ["Am"]),
        (TLAN, ["eng"]), (TCOM, ["J. Doe"]),
    ):  # fmt: skip
        tags.add(frame(encoding=3, text=text))
    mood = ["tense", "brooding"]
    tags.add(TMOO(encoding=3, text=mood) if version == 4 else TXXX(encoding=3, desc="mood", text=mood))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=["strings swell"]))
    tags.add(COMM(encoding=3, lang="eng", desc="iTunNORM", text=[" 00000A 0000B"]))  # iTunes' data: not words
    tags.add(TXXX(encoding=3, desc="DESCRIPTION", text=["written for a chase"]))
    tags.add(TXXX(encoding=3, desc="Keywords", text=["epic", "battle"]))
    return tags


@pytest.mark.parametrize("version", [3, 4])
def test_id3_reads_every_field_in_both_versions(tmp_path, version):
    path = write_audio(tmp_path / "song.mp3", seconds=0.5)
    id3_tag(version).save(path, v2_version=version, v23_sep=None)
    assert mutagen.id3.ID3(path).version[:2] == (2, version)
    tags = read_file(path).tags
    assert tags.words == EVERY_FIELD
    assert (tags.title, tags.genres, tags.bpm) == ("Final Clash", ("Ambient", "Dark Techno"), 128.0)
    assert read_file_tags(str(path))[2].words == EVERY_FIELD


def test_id3_latin1_frames_decode_and_a_frame_that_is_not_utf8_costs_only_itself(tmp_path):
    from mutagen.id3 import ID3, TALB, TCON, TIT2

    path = write_audio(tmp_path / "song.mp3", seconds=0.5)
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["PLACEHOLDER"]))
    tags.add(TALB(encoding=0, text=["Caf\xe9"]))  # latin-1 on disk: the byte 0xE9
    tags.add(TCON(encoding=3, text=["Jazz", "Bossa"]))
    tags.save(path, v2_version=4)
    replace_bytes(path, b"PLACEHOLDER", b"PLACE\xff\xfeLDER")  # declared UTF-8, is not
    info = read_file(path)
    assert info.tags.words == {"album": ("Café",), "genre": ("Jazz", "Bossa")}


VORBIS = {
    "TITLE": ["Final Clash"], "ARTIST": ["Nova"], "ALBUM": ["Skies"], "albumartist": ["Various"],
    "GENRE": ["Ambient", "Dark Techno"], "Mood": ["tense", "brooding"], "COMMENT": ["strings swell"],
    "DESCRIPTION": ["written for a chase"], "GROUPING": ["Trailer Cues"], "KEYWORDS": ["epic", "battle"],
    "BPM": ["128"], "KEY": ["Am"], "LANGUAGE": ["eng"], "COMPOSER": ["J. Doe"],
}  # fmt: skip


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".opus"])
def test_vorbis_comments_read_every_field_and_bytes_that_are_not_utf8_become_replacements(tmp_path, suffix):
    path = stereo(tmp_path / f"song{suffix}")
    audio = mutagen.File(path)
    audio.tags.update(VORBIS)
    audio.tags["GENRE"] = ["Ambient", "Dark Techno", "ambient"]  # a repeat in another case is one genre
    audio.save()
    assert read_file(path).tags.words == EVERY_FIELD

    audio = mutagen.File(path)
    audio.tags["COMMENT"] = ["BROKEN"]
    audio.save()
    replace_bytes(path, b"BROKEN", b"BR\xffK\xe9N")
    assert read_file(path).tags.words["comment"] == ("BR\ufffdK\ufffdN", "written for a chase")


def test_mp4_reads_every_atom_and_a_text_atom_that_is_not_utf8(tmp_path):
    from mutagen.mp4 import MP4FreeForm

    path = write_audio(tmp_path / "song.m4a", seconds=0.5)
    audio = mutagen.File(path)
    itunes = "----:com.apple.iTunes:"
    audio.tags.update(
        {
            "\xa9nam": ["Final Clash"], "\xa9ART": ["Nova"], "\xa9alb": ["Skies"], "aART": ["Various"],
            "\xa9gen": ["Ambient", "Dark Techno"], "\xa9cmt": ["strings swell"], "desc": ["written for a chase"],
            "\xa9grp": ["Trailer Cues"], "keyw": ["epic", "battle"], "tmpo": [128], "\xa9wrt": ["J. Doe"],
            itunes + "MOOD": [MP4FreeForm(b"tense"), MP4FreeForm(b"brooding")],
            itunes + "initialkey": [MP4FreeForm(b"Am")], itunes + "LANGUAGE": [MP4FreeForm(b"eng")],
        }
    )  # fmt: skip
    audio.save()
    assert read_file(path).tags.words == EVERY_FIELD

    audio = mutagen.File(path)
    audio.tags["\xa9nam"] = ["BROKEN"]
    audio.tags[itunes + "MOOD"] = [MP4FreeForm(b"SAD")]
    audio.save()
    replace_bytes(path, b"BROKEN", b"BR\xffKEN")  # mutagen sets the atom aside
    replace_bytes(path, b"SAD", b"S\xe9D")
    words = read_file(path).tags.words
    assert words["title"] == ("BR\ufffdKEN",) and words["mood"] == ("S\ufffdD",)


def info_chunk(*fields: tuple[bytes, bytes]) -> bytes:
    body = b"INFO"
    for key, value in fields:
        body += key + struct.pack("<I", len(value)) + value + b"\0" * (len(value) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def with_chunks(path, *chunks: bytes, tail: bytes = b""):
    """The WAV file with chunks added after its own ones (RIFF size fixed), then `tail` (garbage)."""
    data = path.read_bytes()
    body = data[12:] + b"".join(chunks)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body + tail)


def test_wav_riff_info_is_read_with_its_id3_chunk_and_survives_a_genre_write(tmp_path):
    from mutagen.id3 import TCON, TIT2

    path = write_audio(tmp_path / "song.wav", seconds=0.5)
    audio = mutagen.File(path)
    audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text=["Final Clash"]))
    audio.tags.add(TCON(encoding=3, text=["Ambient"]))
    audio.save()
    with_chunks(
        path,
        info_chunk(
            (b"INAM", b"Info Title\0"), (b"IART", b"Nova\0"), (b"IPRD", b"Skies\0"),
            (b"IGNR", b"Dark Techno\0"), (b"ICMT", b"caf\xe9 strings\0"),  # Windows-1252, not UTF-8
            (b"IKEY", "épique".encode() + b"\0"), (b"ISFT", b"Lavf\0"), (b"ILNG", b"eng\0"),
        ),
    )  # fmt: skip
    tags = read_file(path).tags
    assert tags.words == {
        "title": ("Final Clash",),  # the ID3 title comes first; the first value is the title
        "artist": ("Nova",),
        "album": ("Skies",),
        "genre": ("Ambient", "Dark Techno"),
        "comment": ("café strings",),
        "keywords": ("épique",),
        "language": ("eng",),
    }
    assert tags.title == "Final Clash"
    assert write_tags(path, TagValues(("rock",), ("tense",))) == TagValues(
        ("Ambient", "Dark Techno", "rock"), ("tense",)
    )
    assert read_file(path).tags.words["genre"] == ("Ambient", "Dark Techno", "rock")


def test_wav_info_alone_and_garbage_chunks_never_raise(tmp_path):
    path = write_audio(tmp_path / "song.wav", seconds=0.5)
    bad_size = b"LIST" + struct.pack("<I", 40) + b"INFOINAM" + struct.pack("<I", 10_000) + b"Cut"
    with_chunks(path, info_chunk((b"IGNR", b"Ambient\0\0"), (b"ICMT", b"\xff\xfe\0")), tail=bad_size)
    assert read_file(path).tags.words == {"genre": ("Ambient",), "comment": ("ÿþ",)}
    assert riff.read_info(write_random_bytes(tmp_path / "junk.wav")) == {}
    huge = tmp_path / "huge.wav"
    huge.write_bytes(b"RIFF\xff\xff\xff\xffWAVE" + b"LIST\xff\xff\xff\x7fINFO" + b"\0" * 64)
    assert riff.read_info(huge) == {}
    assert riff.read_info(tmp_path / "missing.wav") == {}


def test_generic_apev2_reads_the_common_keys(tmp_path):
    path = write_audio(tmp_path / "song.wv", seconds=0.5, codec="wavpack")
    audio = mutagen.File(path)
    audio.tags.update(
        {"Title": "T", "Genre": "Ambient\0Dark Techno", "Mood": "tense", "Comment": "c", "Composer": "J"}
    )
    audio.save()
    assert read_file(path).tags.words == {
        "title": ("T",), "genre": ("Ambient", "Dark Techno"), "mood": ("tense",), "comment": ("c",),
        "composer": ("J",),
    }  # fmt: skip
