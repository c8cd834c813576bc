"""Used marks: music placed in an edit, recorded in the catalog (schema v7) by `viml suggest --mark-used`,
the app's "Used in this edit", the service's POST /v1/marks and a strip placed by the Blender add-on; and
`pairs_from_marks`, which turns the marks with a clip into training pairs.

Checked: a v6 catalog's used tracks survive the migration as marks without a clip (still left out by
--exclude-used, never pairs); a mark is one row with every value checked first, the same placement
marked again replaces it, a read-only catalog refuses it in one line; moved music is relinked by content
hash, and vanished or changed files, clips past the video's end and clip-less marks are skipped with why.
The first half runs on tones catalogued with the statistics analyzer; the CLI, service and Blender parts
on the e2e world's real catalog with the demo bundle (service_helpers.library), each on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from media_factory import write_video
from test_catalog_read_only import read_only_view
from test_cli_bad_input import write_tone
from viml.catalog.scan import scan
from viml.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from viml.catalog.store import Catalog, CatalogWriteError, path_key
from viml.core.errors import UserFacingError
from viml.learning.marks import pairs_from_marks
from viml.learning.pairs import EditPair
from viml.search.filters import Filters

STATS = "viml.demo.stats_analyzer:load"
VIDEO_SECONDS = 6.0


@dataclass(frozen=True)
class Edit:
    catalog: Path
    music: Path  # the folder scanned
    tracks: list[str]  # catalogued paths, tone0..tone2 (12 s each)
    video: str  # a 6 s clip


@pytest.fixture
def edit(tmp_path) -> Edit:
    music = tmp_path / "music"
    music.mkdir()
    for index in range(3):
        write_tone(music / f"tone{index}.wav", seconds=12.0, frequency=220 * (index + 1))
    video = write_video(tmp_path / "clip.mp4", seconds=VIDEO_SECONDS, fps=12)
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        scan(catalog, str(music), STATS, jobs=1, progress=False)
        tracks = [track.path for track in catalog.tracks()]
    assert len(tracks) == 3
    return Edit(tmp_path / "catalog.sqlite", music, tracks, str(video))


def test_a_v6_catalogs_used_tracks_become_marks_without_a_clip(edit, tmp_path):
    """A v6 catalog (used_tracks: path, used_at, note) upgrades in place; its rows stay readable as marks
    without a clip, which --exclude-used still leaves out and learning skips."""
    old = tmp_path / "v6.sqlite"
    connection = sqlite3.connect(old, isolation_level=None)
    for migration in MIGRATIONS[:6]:
        for step in migration:
            step(connection) if callable(step) else connection.execute(step)
    connection.execute("PRAGMA user_version = 6")
    connection.execute("ATTACH ? AS scanned", (str(edit.catalog),))
    for table in ("contents", "segments", "vocabularies", "tracks"):  # the scanned tracks, as v6 holds them
        connection.execute(f"INSERT INTO {table} SELECT * FROM scanned.{table}")
    connection.execute("DETACH scanned")
    gone = path_key(edit.music / "gone.wav")
    connection.executemany(
        "INSERT INTO used_tracks VALUES (?, ?, ?)",
        [(edit.tracks[0], 1000.0, edit.video), (gone, 2000.0, None)],
    )
    connection.close()
    with Catalog(old) as catalog:
        assert catalog.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in catalog.connection.execute("SELECT name FROM sqlite_master")}
        assert "used_tracks" not in tables
        first, second = catalog.marks()
        assert (first.music, first.used_at, first.note, first.origin) == (
            edit.tracks[0],
            1000.0,
            edit.video,
            "track",
        )
        assert first.music_hash == catalog.track(edit.tracks[0]).hash and not first.has_clip
        assert (second.music, second.music_hash, second.note) == (gone, None, None)
        assert catalog.used_paths() == {edit.tracks[0], gone}
        table = catalog.load_tracks()
        kept = Filters(exclude_used=True).keep(table, catalog)
        assert [p for p, keep in zip(table.paths, kept, strict=True) if keep] == edit.tracks[1:]
        pairs, skipped = pairs_from_marks(catalog)
    assert pairs == [] and [s.what for s in skipped] == [edit.tracks[0], gone]
    assert all("without its clip" in s.why for s in skipped)


def test_a_mark_is_one_row_and_the_same_placement_replaces_it(edit):
    with Catalog(edit.catalog) as catalog:
        mark = catalog.add_mark(edit.tracks[1], video=edit.video, video_in=1.0, video_out=4.5,
                                music_offset=2.25, origin="cli")  # fmt: skip
        (stored,) = catalog.marks()
        assert stored == mark and mark.has_clip
        assert (mark.music, mark.music_hash) == (edit.tracks[1], catalog.track(edit.tracks[1]).hash)
        assert (mark.video, mark.video_in, mark.video_out, mark.music_offset) == (edit.video, 1.0, 4.5, 2.25)
        assert mark.project == edit.video  # default: the video, so its clips stay on one side of a hold-out
        again = catalog.add_mark(edit.tracks[1], video=edit.video, video_in=1.0, video_out=4.5,
                                 music_offset=2.25, project="  my edit  ", origin="app")  # fmt: skip
        assert catalog.marks() == [again] and again.project == "my edit" and again.used_at >= mark.used_at
        other = catalog.add_mark(
            edit.tracks[1], video=edit.video, video_in=1.0, video_out=4.5, music_offset=3.0
        )
        track_only = catalog.add_mark(edit.tracks[2], origin="service")
        assert catalog.marks() == [again, other, track_only] and not track_only.has_clip
        assert catalog.used_paths() == {edit.tracks[1], edit.tracks[2]}


@pytest.mark.parametrize(
    "case, message",
    [
        (dict(music="uncatalogued"), "is not in the catalog"),
        (dict(video="missing"), "the video .* does not exist"),
        (dict(video_in=float("nan")), "in must be a time >= 0"),
        (dict(video_out=None), "out must be a time >= 0"),
        (dict(music_offset=-1.0), "music offset must be a time >= 0"),
        (dict(video_out=1.0), r"out \(1.0\) must be after its in \(1.0\)"),
        (dict(video=None), "need its video"),
    ],
)
def test_a_bad_mark_is_refused_and_nothing_is_written(edit, case, message):
    values = dict(music=edit.tracks[0], video=edit.video, video_in=1.0, video_out=4.0, music_offset=0.0)
    values |= case
    if values["music"] == "uncatalogued":
        values["music"] = str(edit.music / "elsewhere.wav")
    if values["video"] == "missing":
        values["video"] = str(Path(edit.video).with_name("missing.mp4"))
    with Catalog(edit.catalog) as catalog:
        with pytest.raises(UserFacingError, match=message):
            catalog.add_mark(values.pop("music"), **values)
        assert catalog.marks() == []


def test_a_read_only_catalog_refuses_a_mark_in_one_line(edit, tmp_path):
    with Catalog(edit.catalog) as catalog:
        catalog.mark_used([edit.tracks[0]])
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(edit.catalog, folder / "catalog.sqlite")
    with read_only_view(folder, tmp_path) as view, Catalog(view / "catalog.sqlite") as catalog:
        assert catalog.read_only
        with pytest.raises(CatalogWriteError, match="readonly database; it is read-only.*a used mark"):
            catalog.add_mark(edit.tracks[1], video=edit.video, video_in=0.0, video_out=2.0, music_offset=0.0)
        assert [m.music for m in catalog.marks()] == [edit.tracks[0]]


def test_pairs_from_marks_relink_moved_music_and_say_why_the_rest_are_skipped(edit, tmp_path):
    doomed = write_video(tmp_path / "doomed.mp4", seconds=4.0, fps=12)
    clip = dict(video=edit.video, video_in=1.0, video_out=4.0)
    with Catalog(edit.catalog) as catalog:
        kept = catalog.add_mark(edit.tracks[0], music_offset=2.0, project="edit A", **clip)
        moved = catalog.add_mark(edit.tracks[1], music_offset=0.5, project="edit B", **clip)
        changed = catalog.add_mark(edit.tracks[2], music_offset=1.0, **clip)
        catalog.add_mark(edit.tracks[0], video=doomed, video_in=0.0, video_out=2.0, music_offset=0.0)
        catalog.add_mark(edit.tracks[0], music_offset=0.0, video=edit.video, video_in=5.0, video_out=20.0)
        catalog.add_mark(edit.tracks[0], music_offset=12.5, **clip)
        catalog.add_mark(edit.tracks[1])  # the track only
        (edit.music / "moved").mkdir()
        os.replace(edit.tracks[1], edit.music / "moved" / "renamed.wav")
        write_tone(edit.tracks[2], seconds=12.0, frequency=1234.0)  # other content at the same path
        os.remove(doomed)
        scan(catalog, str(edit.music), STATS, jobs=1, progress=False)
        assert (
            catalog.track(edit.tracks[1]) is None and catalog.track(edit.tracks[2]).hash != changed.music_hash
        )
        pairs, skipped = pairs_from_marks(catalog)
    renamed = path_key(edit.music / "moved" / "renamed.wav")
    assert pairs == [
        EditPair("edit A", edit.video, 1.0, 4.0, edit.tracks[0], 2.0, source="marks"),
        EditPair("edit B", edit.video, 1.0, 4.0, renamed, 0.5, source="marks"),
    ]
    assert moved.music == edit.tracks[1] and kept.music_hash != moved.music_hash
    whys = [s.why for s in skipped]
    assert len(whys) == 5, whys
    assert "holds other content than when it was marked" in whys[0] and skipped[0].project == edit.video
    assert f"the video {doomed} has vanished" in whys[1]
    assert "runs past the video's end (6.00 s)" in whys[2]
    assert "music offset 12.50 s is past the track's end (12.00 s)" in whys[3]
    assert "without its clip" in whys[4] and skipped[4].what == edit.tracks[1]
    assert all(s.what.startswith(edit.tracks[0]) for s in skipped[1:4])
