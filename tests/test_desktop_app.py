"""The real app offscreen over a real catalog of a generated world, ranked by real model bundles: scan
(child process, real musicnn), prompt, clip in/out, results, drag-out, audition without a device, timeline
export, screenshot, a vanished file; and no torch in the process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import e2e_helpers as e2e
import numpy as np
import pytest
from music_helpers import install_models
from viml.desktop import backend

pytest.importorskip("open_clip")


def open_window(qtbot, tmp_path, bundle, isolated_viml_home):
    """The app over an empty catalog, ranking with `bundle`, scanning with the real music model."""
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    install_models(e2e.home() / "models" / "musicnn", isolated_viml_home)  # where the scan child looks
    music = tmp_path / "music"  # a copy: this test removes a file from it
    shutil.copytree(e2e.world().root / "music", music)
    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    settings.bundle = str(bundle)
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "No tracks yet" in window.library.summary.text(), timeout=5000)
    window.add_music_folders([str(music)])  # scans in a child process
    qtbot.waitUntil(lambda: window.scan_task is None and window.is_idle(), timeout=60000)
    count = len(e2e.world().pieces)
    qtbot.waitUntil(lambda: window.library.model.counts().get("analysed") == count, timeout=10000)
    return window, music


def test_app_prompt_search_with_zero_shot_bundle(qtbot, tmp_path, isolated_viml_home):
    world = e2e.world()
    window, music = open_window(qtbot, tmp_path, e2e.zero_shot_bundle(), isolated_viml_home)
    # The status bar says which kind of bundle ranks (from its manifest), opened at start-up.
    qtbot.waitUntil(lambda: window.bundle_info is not None, timeout=20000)
    assert window.bundle_label.text() == "Bundle: zero-shot (zero-shot, prompts only)"
    assert "no ViML training" in window.bundle_label.toolTip()
    qtbot.keyClicks(window.prompt, "jazz piano")
    count = len(world.pieces)
    qtbot.waitUntil(lambda: window.results_model.rowCount() == count and window.is_idle(), timeout=20000)
    best = window.results_model.suggestion(0)
    jazz = [p for p in world.pieces if "jazz" in p.tags]
    assert os.path.basename(best.path) in {os.path.basename(p.music) for p in jazz}
    assert "jazz" in best.tags and best.curve.size >= 1
    scores = [s.score for s in window.results_model.rows]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    data = window.results_model.mimeData([window.results_model.index(0, 1)])
    assert data.urls()[0].toLocalFile() == os.path.abspath(best.path)

    # This bundle has no picture encoder: a clip gets the clear message, not a crash.
    window.open_video(str(world.video_path(world.pieces[0])))
    qtbot.waitUntil(lambda: "cannot read pictures" in window.results_hint.text(), timeout=20000)

    # A file that vanished after the scan shows as missing, not as a crash.
    os.remove(music / os.path.basename(world.pieces[0].music))
    window.refresh_library()
    qtbot.waitUntil(lambda: window.library.model.counts().get("missing") == 1, timeout=10000)
    window.close()


@pytest.mark.slow
def test_app_clip_search_with_demo_bundle(qtbot, tmp_path, isolated_viml_home):
    """Slow only when run alone (it trains and exports the demo bundle, ~80 s); shared with test_e2e_search."""
    world = e2e.world()
    window, _ = open_window(qtbot, tmp_path, e2e.demo_bundle(), isolated_viml_home)
    qtbot.waitUntil(lambda: window.bundle_info is not None, timeout=20000)
    assert window.bundle_label.text() == "Bundle: demo (demo)"
    piece = world.pieces[2]
    window.open_video(str(world.video_path(piece)))
    qtbot.waitUntil(lambda: window.player.duration > 0, timeout=5000)
    window.player.seek(1.0)
    qtbot.waitUntil(lambda: abs(window.player.position() - 1.0) < 0.05)
    qtbot.keyClick(window.player, "i")
    window.player.seek(9.0)
    qtbot.waitUntil(lambda: abs(window.player.position() - 9.0) < 0.05)
    qtbot.keyClick(window.player, "o")
    count = len(world.pieces)
    qtbot.waitUntil(lambda: window.results_model.rowCount() == count and window.is_idle(), timeout=20000)
    best = window.results_model.suggestion(0)
    assert os.path.basename(best.path) == os.path.basename(piece.music)  # its own music wins
    clip_seconds = window.player.out_point - window.player.in_point  # I/O land on frame times
    assert clip_seconds == pytest.approx(8.0, abs=0.5)
    # As long as the clip, unless the best part starts in the track's last 10 s.
    assert best.length == pytest.approx(min(clip_seconds, best.duration - best.offset), abs=0.01)
    assert best.curve.size >= 1
    before = [s.score for s in window.results_model.rows]
    qtbot.keyClicks(window.prompt, "calm")
    qtbot.waitUntil(
        lambda: window.is_idle() and [s.score for s in window.results_model.rows] != before, timeout=20000
    )

    window.start_audition(0)  # no audio device: the clip plays, and the user is told why
    qtbot.waitUntil(lambda: "without music" in window.statusBar().currentMessage(), timeout=10000)
    window.stop_audition()

    best = window.results_model.suggestion(0)
    target = tmp_path / "cut.otio"
    task = window.export_timeline(str(target))
    assert task is not None
    qtbot.waitUntil(lambda: target.exists() and window.is_idle(), timeout=10000)
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(target))
    video_clip, music_clip = (track[0] for track in timeline.tracks)
    assert video_clip.source_range.start_time.to_seconds() == pytest.approx(window.player.in_point, abs=0.01)
    assert music_clip.source_range.start_time.to_seconds() == pytest.approx(best.offset, abs=0.05)
    assert music_clip.source_range.duration.to_seconds() == pytest.approx(
        best.length, abs=0.1
    )  # container vs tag duration

    from PySide6.QtGui import QImage
    from viml.desktop.app import save_screenshot

    shot = save_screenshot(window, tmp_path / "shot.png")
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 500
    window.close()


def test_no_bundle_is_shown_not_raised(qtbot, tmp_path, isolated_viml_home):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.bundle_task is None, timeout=10000)
    assert window.bundle_label.text() == "Bundle: none"
    assert "viml bundle build --zero-shot" in window.bundle_label.toolTip()
    window.close()


def test_no_catalog_yet_is_a_clear_message(tmp_path):
    with pytest.raises(backend.UserFacingError, match="No catalog yet"):
        backend.suggest(tmp_path / "none.sqlite", None, None, 0.0, 0.0, "piano", 0.5)


def test_top_tags_skips_weak_and_duplicate_tags():
    probabilities = np.array([[0.9, 0.1, 0.8], [0.7, 0.1, 0.6]], np.float32)
    assert backend.top_tags(probabilities, ["MTT:piano", "MTT:rock", "MSD:Piano"]) == ["piano"]


def test_desktop_imports_no_torch():
    code = (
        "import sys, viml.desktop.main_window, viml.desktop.app, viml.cli.app; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    )
