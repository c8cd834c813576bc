"""The desktop's search bar as an editor uses it (issue 16), in a real Qt application offscreen: the prompt
keeps its undo history and a recent list, the influence shows its value, the filters row (BPM, length,
genre, vocals, not used in this edit) becomes the search's filters and applies in the background, and
the results have artist, BPM (measured marked "≈"), key and length columns, sortable.

The catalog tests scan copies of the e2e world's music (one FLAC given artist, BPM and key tags) with real
musicnn + BeatNet and rank with the zero-shot bundle (real MiniLM).
"""

from __future__ import annotations

import json
import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import e2e_helpers as e2e
import numpy as np
import pytest
from PySide6.QtCore import Qt
from viml.desktop.results import ResultsModel, Suggestion
from viml.search.filters import Filters


def make_window(qtbot, catalog=None, bundle=None):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    if catalog is not None:
        settings.catalog = str(catalog)
    if bundle is not None:
        settings.bundle = str(bundle)
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_idle, timeout=30000)
    return window


def example_button(window, text: str):
    from PySide6.QtWidgets import QPushButton

    return next(b for b in window.findChildren(QPushButton) if b.text() == text)


# -- the prompt box ---------------------------------------------------------------------------------


def test_an_example_prompt_is_an_undoable_edit(qtbot):
    """Before the fix the example's setText wiped the typed prompt and the undo history with it."""
    window = make_window(qtbot)
    window.prompt.setFocus()
    qtbot.keyClicks(window.prompt, "tense dark synths")
    example_button(window, "calm piano").click()
    assert window.prompt.text() == "calm piano"
    window.prompt.setFocus()
    qtbot.keyClick(window.prompt, Qt.Key_Z, Qt.ControlModifier)
    assert window.prompt.text() == "tense dark synths"
    qtbot.keyClick(window.prompt, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo
    assert window.prompt.text() == "calm piano"


def test_recent_prompts_are_remembered_and_offered(qtbot):
    from viml.desktop.settings import AppSettings

    window = make_window(qtbot)
    for prompt in ("dreamy pads", "sad strings", "Dreamy pads"):
        window.prompt.selectAll()
        qtbot.keyClicks(window.prompt, prompt)
        qtbot.keyClick(window.prompt, Qt.Key_Return)
    assert AppSettings().recent_prompts == ["Dreamy pads", "sad strings"]  # newest first, once each
    again = make_window(qtbot)  # a new session offers them
    assert again.prompt.completer().model().stringList() == ["Dreamy pads", "sad strings"]
    bar = again.search_bar
    bar.prompt.setText("my own words")
    bar._fill_recent_menu()
    picks = {a.text(): a for a in bar.recent_button.menu().actions()}
    picks["sad strings"].trigger()
    assert bar.prompt.text() == "sad strings"
    bar.prompt.undo()
    assert bar.prompt.text() == "my own words"


def test_the_influence_shows_its_value():
    from viml.desktop.search_bar import influence_text

    assert [influence_text(v) for v in (0, 30, 50, 100)] == [
        "Video only", "Video 70% · Text 30%", "Video 50% · Text 50%", "Text only"
    ]  # fmt: skip


def test_the_slider_label_follows_the_slider(qtbot):
    window = make_window(qtbot)
    for value, text in ((0, "Video only"), (70, "Video 30% · Text 70%"), (100, "Text only")):
        window.influence.setValue(value)
        assert window.search_bar.influence_label.text() == text
        assert window.query_parameters()["influence"] == value / 100


# -- the filters row --------------------------------------------------------------------------------


def test_the_filters_row_is_the_searchs_filters(qtbot):
    window = make_window(qtbot)
    bar = window.search_bar
    assert window.query_parameters()["filters"] == Filters() and not bar.clear_filters.isEnabled()
    bar.min_bpm.setValue(90)
    bar.max_bpm.setValue(130)
    bar.min_duration.lineEdit().setText("1:30")
    bar.min_duration.interpretText()
    bar.max_duration.setValue(240)
    bar.genre.setText(" ambient ")
    bar.vocals.setCurrentIndex(bar.vocals.findText("Instrumental"))
    assert bar.max_duration.text() == "4:00" and bar.min_duration.value() == 90
    assert window.query_parameters()["filters"] == Filters(
        min_bpm=90, max_bpm=130, min_duration=90, max_duration=240, genre="ambient", vocals=False
    )
    # Not used in this edit: the used marks and the music of the clip's timeline.
    window.timeline_music = {"/music/on the timeline.wav"}
    bar.not_used.setChecked(True)
    filters = window.query_parameters()["filters"]
    assert filters.exclude_used and filters.exclude == {"/music/on the timeline.wav"}
    bar.clear_filters.click()
    assert window.query_parameters()["filters"] == Filters() and not bar.clear_filters.isEnabled()


def test_a_filter_change_asks_again(qtbot):
    window = make_window(qtbot)
    asked = []
    window.search_bar.changed.connect(lambda: asked.append(window.query_parameters()["filters"]))
    window.search_bar.vocals.setCurrentIndex(1)
    window.search_bar.not_used.setChecked(True)
    assert [f.vocals for f in asked] == [True, True] and asked[-1].exclude_used


def test_the_timelines_music_is_read(tmp_path):
    from media_factory import write_audio, write_video
    from viml.catalog.otio_export import MusicPlacement, build_timeline, write_timeline
    from viml.desktop import backend

    video, music = write_video(tmp_path / "clip.mp4", seconds=2.0), write_audio(tmp_path / "song.wav", 4.0)
    timeline = build_timeline([MusicPlacement(str(music), 0.5)], 2.0, video=str(video))
    write_timeline(timeline, str(tmp_path / "edit.otio"))
    assert backend.timeline_music(str(tmp_path / "edit.otio")) == [str(music)]


def test_the_vocals_rule():
    """A segment is sung when its strongest voice tag counts (>= 0.3) and beats "no vocals"; a track has
    vocals from a quarter of its segments sung."""
    from viml.search.filters import VOCAL_SHARE, sung_share

    names = ["MTT:guitar", "MTT:female", "MTT:no vocals", "MSD:male vocalists", "MSD:instrumental"]
    rows = np.array([
        # track 0: two of four segments sung (female, then male)
        [0.9, 0.6, 0.1, 0.0, 0.1], [0.9, 0.0, 0.1, 0.4, 0.2], [0.9, 0.2, 0.1, 0.1, 0.0], [0.9, 0.1, 0.6, 0.0, 0.5],
        # track 1: voice above the threshold but "no vocals" stronger; then a weak voice
        [0.5, 0.4, 0.7, 0.0, 0.0], [0.5, 0.25, 0.0, 0.0, 0.0],
    ], np.float32)  # fmt: skip
    share = sung_share(rows, names, np.array([0, 4]), np.array([4, 2]))
    np.testing.assert_allclose(share, [0.5, 0.0])
    assert VOCAL_SHARE == 0.25
    with pytest.raises(Exception, match="no vocals tags"):
        sung_share(rows[:, :1], names[:1], np.array([0]), np.array([6]))


# -- the result columns -----------------------------------------------------------------------------


def suggestion(rank: int, title: str, **fields) -> Suggestion:
    defaults = {"score": 1.0 - rank / 10, "offset": 0.0, "length": 8.0, "duration": 100.0}
    return Suggestion(path=f"/music/{title}.wav", title=title, rank=rank, **{**defaults, **fields})


def test_result_columns_and_sorting(qtbot):
    model = ResultsModel()
    rows = [
        suggestion(1, "alpha", artist="Zed", bpm=128.0, key="Am", duration=200.0),
        suggestion(2, "beta", artist="", measured_bpm=119.6, duration=65.0),
        suggestion(3, "gamma", artist="Abe", duration=125.0),
    ]
    model.set_suggestions(rows)
    header = [model.headerData(c, Qt.Horizontal) for c in range(model.columnCount())]
    assert {"#", "Track", "Artist", "BPM", "Key", "Length", "Score", "Best part", "Tags"} < set(header)
    assert header[ResultsModel.CURVE_COLUMN] == "Match over the track"
    assert header.index("Track") < ResultsModel.CURVE_COLUMN < header.index("BPM")  # details scroll first

    def column(name: str) -> list[str]:
        index = header.index(name)
        return [model.data(model.index(r, index)) for r in range(model.rowCount())]

    assert column("BPM") == ["128", "≈120", ""] and column("Key") == ["Am", "", ""]
    assert column("Length") == ["3:20", "1:05", "2:05"] and column("Artist") == ["Zed", "", "Abe"]
    model.sort(header.index("Length"), Qt.AscendingOrder)
    assert column("Track") == ["beta", "gamma", "alpha"] and column("#") == ["2", "3", "1"]
    model.sort(header.index("BPM"), Qt.DescendingOrder)
    assert column("Track")[:2] == ["alpha", "beta"]
    model.sort(header.index("Artist"), Qt.AscendingOrder)
    assert column("Track") == ["gamma", "alpha", "beta"]  # the empty artist last
    model.set_suggestions(rows)  # new results keep the chosen order
    assert column("Track") == ["gamma", "alpha", "beta"]
    model.sort(0, Qt.AscendingOrder)
    assert column("#") == ["1", "2", "3"]


# -- on a real catalog ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """Four world tracks scanned with musicnn + BeatNet; piece-0001.flac tagged with artist, BPM and key,
    the others without a BPM tag (their tempo is measured)."""
    import mutagen
    from mutagen.flac import FLAC
    from service_helpers import library

    home = library().home  # musicnn and BeatNet converted
    root = tmp_path_factory.mktemp("filters")
    music = root / "music"
    music.mkdir()
    for name in ("piece-0000.wav", "piece-0001.flac", "piece-0002.mp3", "piece-0005.wav"):
        shutil.copy(e2e.world().root / "music" / name, music / name)
    flac = FLAC(music / "piece-0001.flac")
    flac["ARTIST"], flac["BPM"], flac["KEY"] = "The Testers", "128", "F#m"
    flac.save()
    for name in ("piece-0000.wav", "piece-0002.mp3", "piece-0005.wav"):  # the world tags a BPM: not these
        audio = mutagen.File(music / name)
        if audio.tags is not None:
            audio.tags.delall("TBPM")
            audio.save()
    catalog = root / "catalog.sqlite"
    e2e.viml("scan", str(music), "--catalog", str(catalog), "--bundle", str(e2e.zero_shot_bundle()),
             "-j", "1", "--quiet", home=home)  # fmt: skip
    return home, catalog, music


def test_key_bpm_and_artist_come_from_the_catalog(tagged):
    from viml.desktop import backend

    _, catalog, music = tagged
    rows = backend.suggest(catalog, str(e2e.zero_shot_bundle()), None, 0.0, 0.0, "music", 0.5, top=10)
    by_name = {os.path.basename(row.path): row for row in rows}
    assert len(by_name) == 4
    flac = by_name["piece-0001.flac"]
    assert (flac.artist, flac.bpm, flac.key, flac.bpm_text) == ("The Testers", 128.0, "F#m", "128")
    assert flac.title == "piece-0001.flac" or "–" not in flac.title  # the artist has its own column
    others = [row for name, row in by_name.items() if name != "piece-0001.flac"]
    assert all(row.key == "" and row.bpm is None for row in others)  # no key is ever guessed
    measured = [row for row in others if row.measured_bpm]
    assert measured, "BeatNet measured no tempo on the world's music"
    for row in measured:
        assert row.bpm_text == f"≈{row.measured_bpm:.0f}"


def test_filters_apply_in_the_app_without_blocking(qtbot, tagged):
    from viml.catalog.store import Catalog

    _, catalog, music = tagged
    window = make_window(qtbot, catalog, e2e.zero_shot_bundle())
    window.prompt.setText("music")
    qtbot.waitUntil(lambda: window.is_idle() and window.results_model.rowCount() == 4, timeout=60000)
    paths = {window.results_model.suggestion(r).path: window.results_model.suggestion(r) for r in range(4)}
    durations = sorted(s.duration for s in paths.values())
    bar = window.search_bar

    def shown() -> set[str]:
        qtbot.waitUntil(window.is_idle, timeout=60000)
        return {window.results_model.suggestion(r).path for r in range(window.results_model.rowCount())}

    # Length: at most the second shortest. The query runs in the background: the call returns at once.
    bar.max_duration.setValue(int(durations[1]))
    assert window.query.running  # asked, not answered yet: the GUI thread did not wait for it
    assert shown() == {p for p, s in paths.items() if s.duration <= int(durations[1])}
    bar.max_duration.setValue(0)
    # BPM: the tagged 128 is in 120-135; measured tempos count at half and double time too.
    bar.min_bpm.setValue(120)
    bar.max_bpm.setValue(135)
    kept = shown()
    assert str(music / "piece-0001.flac") in kept
    for path in kept:
        tempo = paths[path].bpm or paths[path].measured_bpm
        assert tempo and any(120 <= t <= 135 for t in (tempo, tempo * 2, tempo / 2)), (path, tempo)
    bar.clear_filters.click()
    assert len(shown()) == 4
    # Not used in this edit: a used mark, then the music already on the clip's timeline.
    with Catalog(catalog) as opened:
        opened.mark_used([str(music / "piece-0000.wav")])
    bar.not_used.setChecked(True)
    assert str(music / "piece-0000.wav") not in shown() and len(shown()) == 3
    from viml.catalog.otio_export import MusicPlacement, build_timeline, write_timeline

    video = str(e2e.world().video_path(e2e.world().pieces[0]))
    timeline = build_timeline([MusicPlacement(str(music / "piece-0002.mp3"), 0.0)], 4.0, video=video)
    write_timeline(timeline, str(music.parent / "edit.otio"))
    window.influence.setValue(100)  # text only: the zero-shot bundle reads no pictures, and need not
    window.open_video(video, 0.0, 4.0, timeline=str(music.parent / "edit.otio"))
    qtbot.waitUntil(lambda: window.is_idle() and len(shown()) == 2, timeout=60000)
    assert shown() == {str(music / "piece-0001.flac"), str(music / "piece-0005.wav")}
    # Instrumental and with-vocals split the library.
    bar.not_used.setChecked(False)
    bar.vocals.setCurrentIndex(bar.vocals.findText("Instrumental"))
    instrumental = shown()
    bar.vocals.setCurrentIndex(bar.vocals.findText("With vocals"))
    vocal = shown()
    assert not instrumental & vocal and instrumental | vocal == set(paths)
    window.close()


def test_cli_vocals_and_instrumental_split_the_library(tagged):
    home, catalog, music = tagged

    def paths(*flags: str) -> set[str]:
        done = e2e.viml("suggest", "--prompt", "music", *flags, "--catalog", str(catalog), "--bundle",
                        str(e2e.zero_shot_bundle()), "-n", "10", "--format", "json", home=home)  # fmt: skip
        return {r["path"] for r in json.loads(done.stdout[done.stdout.index("[") :])}

    everything, vocal, instrumental = paths(), paths("--vocals"), paths("--instrumental")
    assert len(everything) == 4 and not vocal & instrumental and vocal | instrumental == everything
    refused = e2e.viml("suggest", "--prompt", "x", "--vocals", "--instrumental", "--catalog", str(catalog),
                       home=home, check=False)  # fmt: skip
    assert refused.returncode == 2 and "not allowed with" in refused.stderr


def test_the_bar_and_the_titles_hold_in_a_small_window(qtbot):
    """At 1024×640 the window keeps its size, every search-bar widget is inside it, and the titles keep
    their width while the details scroll sideways."""
    from PySide6.QtWidgets import QWidget
    from viml.desktop.result_columns import TITLE_MIN, TITLE_WIDTH

    window = make_window(qtbot)
    rows = [suggestion(i, f"A fairly long track title number {i}", artist="Some Artist") for i in (1, 2, 3)]
    window.show_results(rows)
    window.resize(1024, 640)
    view, track = window.results, ResultsModel.TRACK_COLUMN
    needed = max(TITLE_MIN, min(view.sizeHintForColumn(track), TITLE_WIDTH))
    qtbot.waitUntil(lambda: window.width() == 1024 and view.columnWidth(track) >= needed, timeout=5000)
    for widget in window.search_bar.findChildren(QWidget):
        if widget.isVisible():
            corner = widget.mapTo(window, widget.rect().bottomRight())
            assert window.rect().contains(corner), type(widget).__name__
    assert view.horizontalScrollBar().maximum() > 0  # the details scroll instead
