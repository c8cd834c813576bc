"""The desktop app as an editor uses it (issue 16), in a real Qt application offscreen: batch tagging
with some bad files, export feedback, drops onto the app, folder removal, long messages, first-run
messages and the scan summary, refused non-regular files."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from media_factory import write_audio, write_random_bytes, write_video
from music_helpers import converted_models, install_models
from viml.desktop.results import Suggestion


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return converted_models(tmp_path_factory)


def make_window(qtbot, tmp_path, folders=()):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    settings.music_folders = [str(f) for f in folders]
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_idle, timeout=20000)
    return window


def music_folder(tmp_path, broken: bool = True):
    from viml.demo.reference_audio import render_piece

    root = tmp_path / "music"
    root.mkdir()
    write_audio(root / "rock.wav", sample_rate=22050, signal=render_piece("rock", 8.0, 22050)[None] * 0.8)
    write_audio(root / "piano.wav", sample_rate=22050, signal=render_piece("piano", 8.0, 22050)[None] * 0.8)
    if broken:
        write_random_bytes(root / "noise.ogg")
    return root


def test_batch_tag_shows_good_tags_and_bad_reasons_when_some_files_fail(
    qtbot, tmp_path, models, isolated_viml_home
):
    from viml.desktop.dialogs import BatchTagDialog
    from viml.desktop.settings import AppSettings

    install_models(models, isolated_viml_home)
    root = music_folder(tmp_path)
    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    dialog = BatchTagDialog(settings)
    qtbot.addWidget(dialog)
    dialog.folder.setText(str(root))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120000)
    rows = {
        dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())
    }
    assert set(rows) == {"rock.wav", "piano.wav", "noise.ogg"}
    assert rows["noise.ogg"].startswith("error: ") and len(rows["noise.ogg"]) > len("error: ")
    assert not rows["rock.wav"].startswith("error") and rows["rock.wav"]
    assert dialog.status.text() == "2 of 3 files tagged, 1 failed."


def test_export_says_where_the_timeline_went_or_why_not(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    clip = write_video(tmp_path / "clip.mp4", seconds=3.0, fps=12, size=(64, 48))
    song = write_audio(tmp_path / "song.wav", seconds=6.0, sample_rate=22050)
    window.open_video(str(clip))
    qtbot.waitUntil(lambda: window.player.duration > 0, timeout=5000)
    window.query.cancel()
    qtbot.waitUntil(window.is_idle, timeout=20000)
    window.show_results([Suggestion(str(song), "song", 0.5, 1.0, 3.0, 6.0, (), np.zeros(1, np.float32))])

    target = tmp_path / "cut.otio"
    window.export_timeline(str(target))  # not kept by the caller, as from the menu
    gc.collect()  # what a collection at that moment did to an unkept task: its signals were lost
    qtbot.waitUntil(lambda: window.is_idle() and target.exists(), timeout=20000)
    qtbot.waitUntil(lambda: "Timeline written to" in window.statusBar().currentMessage(), timeout=5000)
    assert str(target) in window.statusBar().currentMessage()

    window.export_timeline(str(tmp_path / "cut.doc"))  # no such format: the one-line reason
    gc.collect()
    qtbot.waitUntil(lambda: "unknown timeline format" in window.statusBar().currentMessage(), timeout=5000)
    assert "\n" not in window.statusBar().currentMessage()

    # Every format the catalog can write is offered by the export dialog.
    from viml.catalog.timeline_formats import FORMATS

    filters = window.export_filters()
    for suffix in FORMATS:
        assert f"*{suffix}" in filters
    window.close()


def test_a_long_error_message_does_not_widen_the_window(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.resize(1180, 720)
    qtbot.wait(50)
    width = window.width()
    message = "cannot read pictures: " + "a very long reason " * 40
    window.show_query_error(message)
    window.show_message(message)
    window.bundle_label.setText("Bundle: " + "x" * 300)
    qtbot.wait(100)
    assert window.width() == width and window.minimumSizeHint().width() <= width
    assert window.results_hint.toolTip() == message  # the whole text stays readable
    window.close()
