"""Harvesting training pairs from past edits: every format gives the same pairs, moved media are
relinked, and every problem is reported without stopping the rest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from viml.catalog.scan import scan
from viml.catalog.store import Catalog
from viml.catalog.timeline_formats import write
from viml.learning.harvest import harvest
from viml.learning.pairs import EditPair

from tests.media_factory import write_audio, write_video

FPS = 24  # an SMPTE rate: every format holds it without rescaling
FRAME = 1 / FPS
STATS = "viml.demo.stats_analyzer:load"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("harvest_media")
    return {
        "shot_a": write_video(folder / "shot_a.mp4", seconds=10, fps=FPS, with_audio=True),
        "shot_b": write_video(folder / "shot_b.mp4", seconds=10, fps=FPS),
        "broll": write_video(folder / "broll.mov", seconds=6, fps=FPS),
        "song": write_audio(folder / "song.wav", seconds=20, frequency=330),
        "other": write_audio(folder / "other.flac", seconds=20, frequency=550),
    }


def seconds(value: float) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(round(value * FPS), FPS)


def span(start: float, length: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(seconds(start), seconds(length))


def clip(path: Path, source_in: float, length: float, file_seconds: float, name: str | None = None):
    reference = otio.schema.ExternalReference(target_url=path.as_uri(), available_range=span(0, file_seconds))
    return otio.schema.Clip(
        name=name or path.name, media_reference=reference, source_range=span(source_in, length)
    )


def gap(length: float):
    return otio.schema.Gap(source_range=span(0, length))


def timeline(*tracks: tuple[str, list], name: str = "past edit"):
    """tracks: (kind, items) bottom to top per kind; kind "Video" or "Audio"."""
    edit = otio.schema.Timeline(name=name)
    edit.global_start_time = seconds(0)
    for number, (kind, items) in enumerate(tracks, 1):
        track = otio.schema.Track(name=f"{kind[0]}{number}", kind=kind)
        track.extend(items)
        edit.tracks.append(track)
    return edit


def two_shot_edit(media, own_sound: bool = True):
    """V1: shot_a 1-5 s, 1 s black, shot_b 2-7 s; A1: song from 3 s under the first shot and half the
    black, then other, which reaches 4 s in the file as the second shot starts and runs 0.5 s past its
    end; A2: shot_a's own sound."""
    tracks = [
        ("Video", [clip(media["shot_a"], 1, 4, 10), gap(1), clip(media["shot_b"], 2, 5, 10)]),
        ("Audio", [clip(media["song"], 3, 4.5, 20), clip(media["other"], 3.5, 6, 20)]),
    ]
    if own_sound:
        tracks.append(("Audio", [clip(media["shot_a"], 1, 4, 10, "shot_a.mp4 sound")]))
    return timeline(*tracks)


def expected_two_shots(media, project: str) -> list[EditPair]:
    return [
        EditPair(project, str(media["shot_a"]), 1.0, 5.0, str(media["song"]), 3.0),
        EditPair(project, str(media["shot_b"]), 2.0, 7.0, str(media["other"]), 4.0),
    ]


def assert_same_pairs(found: list[EditPair], expected: list[EditPair], within: float = FRAME) -> None:
    def key(pair):
        return (pair.video, pair.video_in)

    found, expected = sorted(found, key=key), sorted(expected, key=key)
    assert [(p.project, p.video, p.music) for p in found] == [(p.project, p.video, p.music) for p in expected]
    for got, want in zip(found, expected, strict=True):
        assert got.video_in == pytest.approx(want.video_in, abs=within)
        assert got.video_out == pytest.approx(want.video_out, abs=within)
        assert got.music_offset == pytest.approx(want.music_offset, abs=within)


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".fcpxml", ".kdenlive", ".xges", ".aaf"])
def test_each_format_gives_the_same_pairs(media, tmp_path, suffix):
    path = tmp_path / f"edit{suffix}"
    write(two_shot_edit(media), path)
    pairs, skipped = harvest([path], None, [])
    assert_same_pairs(pairs, expected_two_shots(media, str(path)))
    # The song's half second over black and the other's over black are no pair; nothing else is lost.
    assert skipped == []


def test_an_edl_gives_the_same_pairs(media, tmp_path):
    # The EDL adapter reads back only what does not overlap on one channel: no sound under the picture.
    path = tmp_path / "edit.edl"
    write(two_shot_edit(media, own_sound=False), path)
    pairs, skipped = harvest([path], None, [])
    assert_same_pairs(pairs, expected_two_shots(media, str(path)))
    assert skipped == []


def copy_media(media, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {key: Path(shutil.copy2(path, folder / path.name)) for key, path in media.items()}


def whys(skipped) -> list[str]:
    return [f"{s.what}: {s.why}" for s in skipped]


def test_the_picture_is_the_topmost_clip_and_titles_are_see_through(media, tmp_path):
    title = otio.schema.Clip(name="Title", media_reference=otio.schema.GeneratorReference(
        generator_kind="SolidColor", available_range=span(0, 9)), source_range=span(0, 9))  # fmt: skip
    edit = timeline(
        ("Video", [clip(media["shot_a"], 0, 9, 10)]),
        ("Video", [gap(3), clip(media["broll"], 1, 3, 6), gap(2), clip(media["broll"], 0, 0.5, 6)]),
        ("Video", [title]),
        ("Audio", [clip(media["song"], 5, 9, 20)]),
    )
    path = tmp_path / "layers.otio"
    write(edit, path)
    pairs, skipped = harvest([path], None, [])
    project, a, broll, song = str(path), str(media["shot_a"]), str(media["broll"]), str(media["song"])
    assert_same_pairs(pairs, [
        EditPair(project, a, 0, 3, song, 5), EditPair(project, broll, 1, 4, song, 8),
        EditPair(project, a, 6, 8, song, 11)])  # fmt: skip
    assert sorted(whys(skipped)) == [
        "broll.mov with song.wav: only 0.5 s together at 8.0 s on the timeline (the least is 2 s)",
        "shot_a.mp4 with song.wav: only 0.5 s together at 8.5 s on the timeline (the least is 2 s)",
    ]
    pairs, _ = harvest([path], None, [], min_seconds=0.5)
    assert len(pairs) == 5


def test_razor_cuts_and_stereo_halves_make_one_pair(media, tmp_path):
    edit = timeline(
        ("Video", [clip(media["shot_a"], 0, 3, 10), clip(media["shot_a"], 3, 3, 10)]),
        ("Audio", [clip(media["song"], 2, 6, 20, "song L")]),
        ("Audio", [clip(media["song"], 2, 6, 20, "song R")]),
    )
    path = tmp_path / "stereo.xml"
    write(edit, path)
    pairs, skipped = harvest([path], None, [])
    assert_same_pairs(pairs, [EditPair(str(path), str(media["shot_a"]), 0, 6, str(media["song"]), 2)])
    assert skipped == []


def test_a_start_timecode_is_taken_off(media, tmp_path):
    hour = 3600.0
    reference = otio.schema.ExternalReference(
        target_url=media["shot_b"].as_uri(), available_range=span(hour, 10)
    )
    shot = otio.schema.Clip(name="shot_b.mp4", media_reference=reference, source_range=span(hour + 1.5, 5))
    path = tmp_path / "timecode.otio"
    write(timeline(("Video", [shot]), ("Audio", [clip(media["song"], 7, 5, 20)])), path)
    pairs, _ = harvest([path], None, [])
    assert_same_pairs(pairs, [EditPair(str(path), str(media["shot_b"]), 1.5, 6.5, str(media["song"]), 7)])


def test_overlapping_music_keeps_what_each_plays_alone(media, tmp_path):
    edit = timeline(
        ("Video", [clip(media["shot_a"], 0, 9, 10)]),
        ("Audio", [clip(media["song"], 0, 6, 20)]),
        ("Audio", [gap(4), clip(media["other"], 0, 5, 20)]),
    )
    path = tmp_path / "crossfade.kdenlive"
    write(edit, path)
    pairs, skipped = harvest([path], None, [])
    project, a = str(path), str(media["shot_a"])
    assert_same_pairs(pairs, [
        EditPair(project, a, 0, 4, str(media["song"]), 0), EditPair(project, a, 6, 9, str(media["other"]), 2)])  # fmt: skip
    assert whys(skipped) == [
        "song.wav and other.flac: play together for 2.0 s from 4.0 s on the timeline: that stretch is left out "
        "of both (which one the picture was cut to cannot be told)"
    ]


def test_problems_are_reported_and_the_good_edits_still_harvested(media, tmp_path):
    folder = tmp_path / "edits"
    (folder / "deeper").mkdir(parents=True)
    write(two_shot_edit(media), folder / "deeper" / "good.otio")
    write(two_shot_edit(media), folder / "good-again.xml")  # the same edit exported again
    write(timeline(("Video", [clip(media["shot_a"], 0, 5, 10)]),
                   ("Audio", [clip(media["shot_a"], 0, 5, 10)])), folder / "own-sound-only.otio")  # fmt: skip
    write(timeline(("Video", [clip(media["shot_a"], 0, 5, 10)])), folder / "silent.xges")
    gone = tmp_path / "gone" / "lost song.wav"
    missing = timeline(
        ("Video", [clip(media["shot_a"], 0, 9, 10)]),
        ("Video", [gap(6), clip(tmp_path / "gone" / "lost shot.mp4", 0, 3, 10)]),
        ("Audio", [clip(gone, 0, 9, 20)]),
        ("Audio", [clip(media["song"], 0, 9, 20)]),
    )
    write(missing, folder / "missing.otio")
    muted = timeline(("Video", [clip(media["shot_b"], 0, 8, 10)]), ("Audio", [clip(media["song"], 1, 8, 20)]),
                     ("Audio", [clip(media["other"], 0, 8, 20)]))  # fmt: skip
    muted.tracks[2].enabled = False
    fast = clip(media["shot_a"], 0, 4, 10)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    muted.tracks[0].append(fast)
    write(muted, folder / "muted.otio")
    write(timeline(("Video", [clip(media["shot_a"], 0, 3, 10), gap(6)]),
                   ("Audio", [gap(4), clip(media["other"], 0, 5, 20)])), folder / "over-black.otio")  # fmt: skip
    (folder / "broken.otio").write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    (folder / "settings.xml").write_text("<settings><not-a-timeline/></settings>")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a timeline")

    result = harvest([folder, notes, tmp_path / "nowhere"], None, [])
    good = str(folder / "deeper" / "good.otio")
    assert result.timelines == [str(folder / n) for n in ("broken.otio", "deeper/good.otio", "good-again.xml",
                                "missing.otio", "muted.otio", "over-black.otio", "own-sound-only.otio", "silent.xges")]  # fmt: skip
    by_project = {}
    for s in result.skipped:
        by_project.setdefault(Path(s.project).name, []).append(f"{s.what}: {s.why}")
    assert by_project["notes.txt"] == [
        "notes.txt: not a timeline: .txt is not one of .otio .xml .fcpxml .kdenlive .xges .aaf .edl"
    ]
    assert by_project["nowhere"] == ["nowhere: no such file or folder"]
    assert by_project["broken.otio"][0].startswith("broken.otio: cannot read it as OpenTimelineIO: ")
    assert by_project["good-again.xml"] == [
        f"good-again.xml: the same edit as {good}: counted once (2 pairs)"
    ]
    assert by_project["own-sound-only.otio"] == [
        "past edit: no music on the timeline: its audio tracks hold only the videos' own sound"
    ]
    assert by_project["silent.xges"] == ["past edit: no music on the timeline: it has no audio clip"]
    assert sorted(by_project["missing.otio"]) == [
        f"lost shot.mp4: video file not found: {tmp_path / 'gone' / 'lost shot.mp4'} is not there; no file "
        f"named lost shot.mp4 under {folder}",
        f"lost song.wav: audio file not found: {gone} is not there; no file named lost song.wav under {folder}",
    ]
    assert sorted(by_project["muted.otio"]) == [
        "A3: muted track: its 1 clips did not play in the edit",
        "shot_a.mp4: its speed is changed: picture and music time no longer match",
    ]
    assert by_project["over-black.otio"] == ["other.flac: no video plays over it on the timeline"]
    assert "settings.xml" not in by_project  # an .xml that is not FCP7 is not a timeline: left alone
    shot_a, song = str(media["shot_a"]), str(media["song"])
    expected = expected_two_shots(media, good) + [
        # The missing shot on top hides shot_a from 6 s: only 0-6 s pairs, with the song found.
        EditPair(str(folder / "missing.otio"), shot_a, 0, 6, song, 0),
        EditPair(str(folder / "muted.otio"), str(media["shot_b"]), 0, 8, song, 1),
    ]
    assert_same_pairs(result.pairs, expected)
    assert result.projects == [good, str(folder / "missing.otio"), str(folder / "muted.otio")]
    assert result.relinks == []


def test_a_fifo_named_like_a_timeline_is_reported_never_opened(media, tmp_path):
    """Opening a FIFO blocks until something writes to it, and OpenTimelineIO's reader holds the GIL while
    it waits: `viml learn` on a folder holding one hung for good. Harvested in a child process, so a
    regression fails here after a minute instead of hanging the suite."""
    folder = tmp_path / "edits"
    folder.mkdir()
    write(two_shot_edit(media), folder / "good.otio")
    os.mkfifo(folder / "pipe.otio")
    os.mkfifo(tmp_path / "given.xml")
    code = (
        "import json, sys; from viml.learning.harvest import harvest; "
        "r = harvest(sys.argv[1:], None, []); "
        "print(json.dumps({'pairs': len(r.pairs), 'skipped': [[s.project, s.why] for s in r.skipped]}))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(folder), str(tmp_path / "given.xml")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the harvest blocked on a FIFO")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    why = "not a regular file (a device, pipe or socket); not opened"
    assert sorted((Path(p).name, w) for p, w in result["skipped"]) == [("given.xml", why), ("pipe.otio", why)]
    assert result["pairs"] == len(expected_two_shots(media, str(folder / "good.otio")))


def test_a_moved_project_folder_is_relinked_by_name(media, tmp_path):
    old = copy_media(media, tmp_path / "old" / "media")
    write(two_shot_edit(old), tmp_path / "old" / "edit.otio")
    (tmp_path / "old").rename(tmp_path / "new")
    moved = {key: tmp_path / "new" / "media" / path.name for key, path in old.items()}
    project = str(tmp_path / "new" / "edit.otio")
    result = harvest([tmp_path / "new"], None, [])
    assert_same_pairs(result.pairs, expected_two_shots(moved, project))
    assert result.skipped == []
    assert sorted((r.original, r.found, r.how) for r in result.relinks) == sorted(
        (old[k].as_uri(), str(moved[k]), "by name next to the timeline")
        for k in ("shot_a", "shot_b", "song", "other")
    )


def test_music_moved_into_the_search_path_is_relinked_and_checked_by_length(media, tmp_path):
    library = tmp_path / "library"
    here = copy_media(media, tmp_path / "project")
    edit = two_shot_edit(here)
    # An edit from another machine names its song by a Windows path.
    edit.tracks[1][0].media_reference.target_url = "file:///C:/Users/me/Music/song.wav"
    write(edit, tmp_path / "project" / "edit.otio")
    library.mkdir()
    here["song"].rename(library / "song.wav")
    here["other"].rename(library / "other.flac")
    write_audio(tmp_path / "project" / "other.flac", seconds=3)  # a different file of the same name
    project = str(tmp_path / "project" / "edit.otio")
    result = harvest([tmp_path / "project" / "edit.otio"], None, [library])
    assert_same_pairs(result.pairs, expected_two_shots({**here, "song": library / "song.wav",
                                                        "other": library / "other.flac"}, project))  # fmt: skip
    assert result.skipped == []
    assert sorted((r.found, r.how) for r in result.relinks) == [
        (str(library / "other.flac"), f"by name in the search path ({library})"),
        (str(library / "song.wav"), f"by name in the search path ({library})"),
    ]
    # Without the search path: the song is not found, and the wrong-length file is used only as far as
    # it goes.
    result = harvest([tmp_path / "project" / "edit.otio"], None, [])
    assert whys(result.skipped) == [
        "song.wav: audio file not found: C:/Users/me/Music/song.wav is not there; "
        f"no file named song.wav under {tmp_path / 'project'}",
        "shot_b.mp4 with other.flac: the music span 4.00-9.00 s lies outside other.flac (3.00 s): another file "
        "of that name, or a start timecode the timeline does not record",
    ]


def test_renamed_music_is_found_by_its_content_hash_in_the_catalog(media, tmp_path):
    music = copy_media({"song": media["song"]}, tmp_path / "music")["song"]
    edit = two_shot_edit({**media, "song": music})
    write(edit, tmp_path / "edit.xml")
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        scan(catalog, tmp_path / "music", STATS, jobs=1, progress=False)
        renamed = tmp_path / "sorted" / "Artist - Song.wav"
        renamed.parent.mkdir()
        music.rename(renamed)
        scan(catalog, tmp_path / "sorted", STATS, jobs=1, progress=False)  # the old path is not rescanned
        result = harvest([tmp_path / "edit.xml"], catalog, [])
    assert_same_pairs(
        result.pairs, expected_two_shots({**media, "song": renamed}, str(tmp_path / "edit.xml"))
    )
    assert [(r.found, r.how) for r in result.relinks] == [(str(renamed), "by content hash in the catalog")]


def test_two_equally_likely_files_are_reported_not_guessed(media, tmp_path):
    write(two_shot_edit({**media, "song": tmp_path / "gone" / "song.wav"}), tmp_path / "edit.otio")
    for folder in ("x", "y"):
        copy_media({"song": media["song"]}, tmp_path / "library" / folder)
    result = harvest([tmp_path / "edit.otio"], None, [tmp_path / "library"])
    assert [p.music for p in result.pairs] == [str(media["other"])]
    assert len(result.skipped) == 1
    assert "2 files could be it" in result.skipped[0].why
    # The one in a folder of the old path's name wins.
    copy_media({"song": media["song"]}, tmp_path / "library" / "gone")
    result = harvest([tmp_path / "edit.otio"], None, [tmp_path / "library"])
    assert [r.found for r in result.relinks] == [str(tmp_path / "library" / "gone" / "song.wav")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from viml.demo.world.generate import generate_world

    return generate_world(tmp_path_factory.mktemp("world"), pieces=12, seed=4, seconds=(8, 10), workers=1)


def test_the_demo_worlds_past_edits_harvest_back_to_their_shots_in_every_format(world, tmp_path):
    from viml.demo.past_edits import load_past_edits, write_past_edits

    written = write_past_edits(world, tmp_path / "past", seed=2, formats=(".otio", ".xml", ".kdenlive"))
    assert load_past_edits(tmp_path / "past") == written
    pieces = {piece.id: piece for piece in world.pieces}
    used = [shot.piece for project in written for shot in project.shots]
    assert sorted(used) == sorted(pieces)  # every piece once
    for project in written:
        assert 1 <= len(project.shots) <= 6
        assert {pieces[shot.piece].split for shot in project.shots} == {project.split}
    assert {project.split for project in written} == {"train", "val", "test"}
    for suffix, folder in ((".otio", "otio"), (".xml", "xml"), (".kdenlive", "kdenlive")):
        result = harvest([tmp_path / "past" / folder], None, [])
        assert result.skipped == [] and result.relinks == []
        expected = [
            EditPair(
                project.files[suffix],
                shot.video,
                shot.video_in,
                shot.video_out,
                shot.music,
                shot.music_offset,
            )
            for project in written
            for shot in project.shots
        ]
        assert_same_pairs(result.pairs, expected, within=1 / world.fps)
        assert result.projects == sorted(p.files[suffix] for p in written)


def test_past_edits_can_be_fewer_and_keep_every_split(world, tmp_path):
    from viml.demo.past_edits import plan_projects

    every = plan_projects(world, seed=2, shots_per_project=(1, 1))
    assert len(every) == len(world.pieces)
    few = plan_projects(world, seed=2, shots_per_project=(1, 1), projects=4)
    assert len(few) == 4 and {p.split for p in few} == {"train", "val", "test"}
    twice = plan_projects(world, seed=2, spans_per_piece=2, shot_seconds=(2, 3))
    for project in twice:  # both shots of a piece sit in one project, and do not overlap
        by_piece = {}
        for shot in project.shots:
            by_piece.setdefault(shot.piece, []).append((shot.video_in, shot.video_out))
        for spans in by_piece.values():
            assert len(spans) == 2
            (a, b), (c, d) = sorted(spans)
            assert b <= c
    assert sorted(s.piece for p in twice for s in p.shots) == sorted([p.id for p in world.pieces] * 2)
