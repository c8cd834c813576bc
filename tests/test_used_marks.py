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

import contextlib
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


# -- the app: "Used in this edit" -------------------------------------------------------------------------


def open_window(qtbot, edit: Edit, clip: tuple[float, float] | None):
    """The real window over the catalog; the results are set by the test (no bundle: its query ends in a
    message), as a search would set them."""
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(edit.catalog)
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if clip is not None:
        window.open_video(edit.video)
        qtbot.waitUntil(lambda: window.player.duration > 0, timeout=10000)
        window.player.set_range(*clip)
    qtbot.waitUntil(window.is_idle, timeout=20000)
    return window


def suggestion(path: str, offset: float):
    import numpy as np
    from viml.desktop.results import Suggestion

    return Suggestion(path, Path(path).stem, 0.9, offset, 3.0, 12.0, ("a",), np.array([0.5]))


def used_action(window):
    """The action a right-click on a result offers (Qt.ActionsContextMenu shows the view's actions)."""
    from PySide6.QtCore import Qt

    assert window.results.contextMenuPolicy() == Qt.ActionsContextMenu
    (action,) = [a for a in window.results.actions() if a.text() == "Used in this edit"]
    return action


def test_used_in_this_edit_records_the_result_with_the_clip(qtbot, edit):
    window = open_window(qtbot, edit, clip=(1.0, 4.0))
    window.show_results([suggestion(edit.tracks[0], 0.0), suggestion(edit.tracks[2], 2.5)])
    window.results.selectRow(1)
    used_action(window).trigger()
    qtbot.waitUntil(
        lambda: window.is_idle() and "Marked" in window.statusBar().currentMessage(), timeout=10000
    )
    assert "tone2.wav from 0:02.5 used with clip.mp4 0:01.0–0:04.0" in window.statusBar().currentMessage()
    with Catalog(edit.catalog) as catalog:
        (mark,) = catalog.marks()
        assert (mark.music, mark.music_offset, mark.origin) == (edit.tracks[2], 2.5, "app")
        assert (mark.video, mark.video_in, mark.video_out) == (
            edit.video,
            window.player.in_point,
            window.player.out_point,
        )
        assert mark.video_in == pytest.approx(1.0, abs=0.1) and mark.project == edit.video
        assert catalog.used_paths() == {edit.tracks[2]}  # "leave out used tracks" now leaves it out

    window.show_results([suggestion(str(edit.music / "not-catalogued.wav"), 0.0)])  # refused: one line
    window.results.selectRow(0)
    used_action(window).trigger()
    qtbot.waitUntil(
        lambda: window.is_idle() and "Not marked" in window.statusBar().currentMessage(), timeout=10000
    )
    assert "not-catalogued.wav is not in the catalog" in window.statusBar().currentMessage()
    with Catalog(edit.catalog) as catalog:
        assert len(catalog.marks()) == 1
    window.close()


def test_used_in_this_edit_without_a_clip_marks_the_track_only(qtbot, edit):
    window = open_window(qtbot, edit, clip=None)
    window.show_results([suggestion(edit.tracks[1], 5.0)])
    window.results.selectRow(0)
    used_action(window).trigger()
    qtbot.waitUntil(
        lambda: window.is_idle() and "Marked" in window.statusBar().currentMessage(), timeout=10000
    )
    assert "no clip: the track only" in window.statusBar().currentMessage()
    with Catalog(edit.catalog) as catalog:
        (mark,) = catalog.marks()
        assert mark.music == edit.tracks[1] and not mark.has_clip and mark.origin == "app"
    window.close()


# -- the CLI, the service and the Blender add-on, on the e2e world's real catalog ----------------------------


def world_copy(tmp_path: Path):
    """service_helpers.library() with a copy of its catalog, without the marks other tests' placements
    left in the shared one (test_blender_addon places a strip), so marks neither reach nor come from them."""
    from service_helpers import library

    lib = library()
    target = tmp_path / "world.sqlite"
    with (
        contextlib.closing(sqlite3.connect(lib.catalog)) as source,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
        copy.execute("DELETE FROM used_marks")
        copy.commit()
    return replace(lib, catalog=target)


def world_video(index: int = 2) -> str:
    import e2e_helpers as e2e

    world = e2e.world()
    return str(world.video_path(world.pieces[index]))


def test_suggest_mark_used_records_result_n_with_the_clip(tmp_path):
    import e2e_helpers as e2e
    from viml.engine.media import probe

    lib, video = world_copy(tmp_path), world_video()
    args = ("--catalog", str(lib.catalog), "--bundle", str(lib.bundle), "--format", "json")
    done = e2e.viml("suggest", video, "--in", "1", "--out", "5", "--mark-used", "2", *args, home=lib.home)
    second = e2e.last_json(done.stdout)[1]
    assert f"marked #2 {second['path']}" in done.stderr
    with Catalog(lib.catalog) as catalog:
        (mark,) = catalog.marks()
        assert mark.music == second["path"] and mark.music_hash == catalog.track(second["path"]).hash
    assert mark.music_offset == pytest.approx(second["start"], abs=1e-9)
    assert (mark.video, mark.video_in, mark.video_out, mark.project, mark.origin) == (
        video,
        1.0,
        5.0,
        video,
        "cli",
    )

    # The top one by default; --out left out: the clip runs to the video's end, not 30 s past the in point.
    done = e2e.viml(
        "suggest", video, "--in", "2", "--mark-used", "--project", "trailer", *args, home=lib.home
    )
    top = e2e.last_json(done.stdout)[0]
    done = e2e.viml("suggest", "--prompt", "warm", "--mark-used", *args, home=lib.home)  # prompt only
    prompted = e2e.last_json(done.stdout)[0]
    assert "no clip: the track only" in done.stderr
    with Catalog(lib.catalog) as catalog:
        marks = catalog.marks()
        pairs, skipped = pairs_from_marks(catalog)
    assert [m.music for m in marks] == [second["path"], top["path"], prompted["path"]]
    assert (marks[1].video_in, marks[1].video_out, marks[1].project) == (
        2.0,
        probe(video).duration,
        "trailer",
    )
    assert not marks[2].has_clip
    assert [(p.project, p.music, p.video_in) for p in pairs] == [
        (video, second["path"], 1.0),
        ("trailer", top["path"], 2.0),
    ]
    assert [s.what for s in skipped] == [prompted["path"]]

    left = e2e.last_json(
        e2e.viml("suggest", "--prompt", "warm", "--exclude-used", *args, home=lib.home).stdout
    )
    assert left and not {r["path"] for r in left} & {m.music for m in marks}
    refused = e2e.viml(
        "suggest", "--prompt", "warm", "-n", "2", "--mark-used", "3", *args, home=lib.home, check=False
    )
    assert refused.returncode == 1 and "--mark-used 3: there are only 2 results" in refused.stderr
    with Catalog(lib.catalog) as catalog:
        assert catalog.marks() == marks


def test_the_service_records_marks_and_refuses_bad_ones(tmp_path):
    import httpx
    from service_helpers import running_service

    lib, video = world_copy(tmp_path), world_video()
    with running_service(lib) as service:

        def post(path: str, body: dict, headers: dict | None = None) -> httpx.Response:
            return httpx.post(service.url + path, json=body, timeout=120,
                              headers=service.headers() if headers is None else headers)  # fmt: skip

        found = post("/v1/suggest", {"video": video, "start": 1.0, "end": 5.0}).json()["suggestions"]
        track = found[0]["path"]
        placed = {"track": track, "offset": found[0]["start"], "video": video, "start": 1.0, "end": 5.0,
                  "project": "/edits/cut.blend", "origin": "resolve"}  # fmt: skip
        answer = post("/v1/marks", placed)
        assert answer.status_code == 201, answer.text
        mark = answer.json()
        assert mark["pair"] and (mark["music"], mark["video"], mark["video_in"], mark["video_out"]) == (
            track,
            video,
            1.0,
            5.0,
        )
        assert (mark["project"], mark["origin"], mark["music_offset"]) == (
            "/edits/cut.blend",
            "resolve",
            found[0]["start"],
        )
        only = post("/v1/marks", {"track": found[1]["path"]})
        assert only.status_code == 201 and not only.json()["pair"] and only.json()["origin"] == "service"

        clip = {"video": video, "start": 1.0, "end": 5.0, "offset": 0.0}
        for body, status, message in [
            ({"track": "/nowhere/x.wav"}, 404, "is not in the catalog"),
            ({"track": track, **clip, "start": 5.0, "end": 1.0}, 400, "must be after its in"),
            ({"track": track, **clip, "video": str(tmp_path / "gone.mp4")}, 400, "does not exist"),
            ({"track": track, **clip, "offset": None}, 400, "music offset must be a time"),
            ({"track": track, "start": 1.0}, 400, "need its video"),
            ({"track": track, "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
            ({"track": track, "origin": "Not ok!"}, 422, "origin"),
        ]:
            answer = post("/v1/marks", body)
            assert answer.status_code == status and message in answer.json()["error"], (body, answer.text)
        assert post("/v1/marks", placed, headers={}).status_code == 401

        rest = post(
            "/v1/suggest", {"video": video, "start": 1.0, "end": 5.0, "filters": {"exclude_used": True}}
        )
        assert {s["path"] for s in rest.json()["suggestions"]} == {s["path"] for s in found} - {
            track,
            found[1]["path"],
        }
    with Catalog(lib.catalog) as catalog:
        assert [m.music for m in catalog.marks()] == [track, found[1]["path"]]


BLENDER_SCRIPT = r"""
import json, os, sys
import addon_utils, bpy
import viml_vse

video, blend, report_path = sys.argv[sys.argv.index("--") + 1:]
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 12, 1.0
editor = scene.sequence_editor_create()
clip = editor.sequences.new_movie("clip", video, 1, 1)
clip.frame_offset_start = 12  # in 1 s, out 5 s at 12 fps
clip.frame_final_duration = 48
editor.active_strip = clip
scene.viml.prompt = "warm"
bpy.ops.wm.save_as_mainfile(filepath=blend)
assert bpy.ops.viml.suggest() == {"FINISHED"}, scene.viml.message
report = {"results": [[r.path, r.start] for r in scene.viml.results], "clip": viml_vse.clip_range(scene, clip)}
assert bpy.ops.viml.place() == {"FINISHED"}
report["placed"] = scene.viml.message
editor.active_strip = None  # no movie strip: placed at the playhead, the track only
scene.viml.index = 1
assert bpy.ops.viml.place() == {"FINISHED"}
report["placed_alone"] = scene.viml.message
report["blend"] = bpy.data.filepath
with open(report_path, "w") as out:
    json.dump(report, out)
"""


def test_a_strip_placed_in_blender_records_a_mark(tmp_path, monkeypatch):
    import e2e_helpers as e2e
    from service_helpers import running_service
    from test_blender_addon import blender_env

    assert shutil.which("blender"), "blender is missing: run scripts/system-deps.sh"
    lib, video = world_copy(tmp_path), world_video()
    env = blender_env(tmp_path, lib.home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    e2e.viml("integrations", "install", "blender", home=lib.home)
    script, blend, report_file = tmp_path / "place.py", tmp_path / "edit.blend", tmp_path / "report.json"
    script.write_text(BLENDER_SCRIPT, encoding="utf-8")
    with running_service(lib):
        done = subprocess.run(
            ["blender", "-b", "--python-exit-code", "1", "--python", str(script), "--", video, str(blend),
             str(report_file)],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert "not marked" not in report["placed"] + report["placed_alone"]
    (first, first_start), (second, _) = report["results"][:2]
    assert report["clip"] == [video, 1.0, 5.0] and report["blend"] == str(blend)
    with Catalog(lib.catalog) as catalog:
        placed, alone = catalog.marks()
        pairs, skipped = pairs_from_marks(catalog)
    assert (placed.music, placed.video, placed.video_in, placed.video_out) == (first, video, 1.0, 5.0)
    assert placed.music_offset == pytest.approx(first_start, abs=1e-9)  # the panel's own (float32) offset
    assert (placed.project, placed.origin) == (str(blend), "blender")
    assert (alone.music, alone.has_clip, alone.origin) == (second, False, "blender")
    assert pairs == [EditPair(str(blend), video, 1.0, 5.0, first, placed.music_offset, source="marks")]
    assert [s.what for s in skipped] == [second]


def test_with_not_used_in_this_edit_on_a_mark_searches_again(qtbot, edit, monkeypatch):
    """The marked track leaves the list at once, not at the next query."""
    window = open_window(qtbot, edit, clip=(1.0, 4.0))
    asked: list[bool] = []
    monkeypatch.setattr(window, "request_query", lambda immediately=False: asked.append(immediately))
    window.show_results([suggestion(edit.tracks[0], 0.0)])
    window.results.selectRow(0)
    used_action(window).trigger()
    qtbot.waitUntil(
        lambda: window.is_idle() and "Marked" in window.statusBar().currentMessage(), timeout=10000
    )
    assert asked == []  # the filter is off: the list stays as it is
    window.search_bar.not_used.setChecked(True)
    asked.clear()
    window.show_results([suggestion(edit.tracks[2], 2.5)])
    window.results.selectRow(0)
    used_action(window).trigger()
    qtbot.waitUntil(lambda: asked == [True], timeout=10000)
    window.close()
