"""The real app offscreen over a real catalog of the demo world: scan, clip in/out, prompt, results,
drag-out, audition without a device, timeline export, screenshot; and no torch in the process."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from viml.desktop import backend

STATS = "viml.catalog.stats_analyzer:load"


def audio_query_engine(_bundle):
    """A real query engine for tests: the clip's own soundtrack through the catalog's test analyzer,
    in the music-embedding space (space None). The product uses the bundle's encoders instead."""
    from viml.catalog.stats_analyzer import load
    from viml.engine.media import read_audio

    analyzer = load()

    def engine(catalog, video, in_point, out_point, prompt, influence):
        audio = read_audio(video, 16000, start=in_point, end=out_point)
        return None, analyzer.analyze(audio, 16000).embeddings

    return engine


@pytest.fixture
def world(tmp_path):
    from viml.engine.world.generate import generate_world

    return generate_world(tmp_path / "world", pieces=4, seed=3, seconds=(21, 24), video_audio=True, workers=1)


def test_app_end_to_end(qtbot, tmp_path, world, monkeypatch):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    monkeypatch.setattr(AppSettings, "analyzer", property(lambda self: STATS))
    backend.set_query_engine_factory(audio_query_engine)
    try:
        window = MainWindow(settings, audio_device="no-such-device-xyz")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: "No tracks yet" in window.library.summary.text(), timeout=5000)

        window.add_music_folders([str(world.root / "music")])  # scans in a child process
        qtbot.waitUntil(lambda: window.scan_task is None and window.is_idle(), timeout=60000)
        qtbot.waitUntil(lambda: window.library.model.counts().get("analysed") == 4, timeout=10000)

        piece = world.pieces[2]
        window.open_video(str(world.root / piece.video))
        qtbot.waitUntil(lambda: window.player.duration > 0, timeout=5000)
        window.player.seek(1.0)
        qtbot.waitUntil(lambda: abs(window.player.position() - 1.0) < 0.05)
        qtbot.keyClick(window.player, "i")
        window.player.seek(13.0)
        qtbot.waitUntil(lambda: abs(window.player.position() - 13.0) < 0.05)
        qtbot.keyClick(window.player, "o")
        qtbot.keyClicks(window.prompt, "calm")
        qtbot.waitUntil(lambda: window.results_model.rowCount() == 4 and window.is_idle(), timeout=20000)

        best = window.results_model.suggestion(0)
        assert os.path.basename(best.path) == os.path.basename(piece.music)  # its own soundtrack wins
        assert best.length == pytest.approx(12.0, abs=0.1) and best.curve.size >= 1
        assert [s.score for s in window.results_model.rows] == sorted(
            (s.score for s in window.results_model.rows), reverse=True
        )
        data = window.results_model.mimeData([window.results_model.index(0, 1)])
        assert data.urls()[0].toLocalFile() == os.path.abspath(best.path)

        window.start_audition(0)  # no audio device: the clip plays, and the user is told why
        qtbot.waitUntil(lambda: "without music" in window.statusBar().currentMessage(), timeout=10000)
        window.stop_audition()

        target = tmp_path / "cut.otio"
        task = window.export_timeline(str(target))
        assert task is not None
        qtbot.waitUntil(lambda: target.exists() and window.is_idle(), timeout=10000)
        import opentimelineio as otio

        timeline = otio.adapters.read_from_file(str(target))
        video_clip, music_clip = (track[0] for track in timeline.tracks)
        assert video_clip.source_range.start_time.to_seconds() == pytest.approx(1.0, abs=0.05)
        assert music_clip.source_range.start_time.to_seconds() == pytest.approx(best.offset, abs=0.05)
        assert music_clip.source_range.duration.to_seconds() == pytest.approx(12.0, abs=0.1)

        shot = tmp_path / "shot.png"
        from viml.desktop.app import save_screenshot

        save_screenshot(window, shot)
        from PySide6.QtGui import QImage

        image = QImage(str(shot))
        assert image.width() >= 800 and image.height() >= 500

        # A file that vanished after the scan shows as missing, not as a crash.
        os.remove(world.root / world.pieces[0].music)
        window.refresh_library()
        qtbot.waitUntil(lambda: window.library.model.counts().get("missing") == 1, timeout=10000)
        window.close()
    finally:
        backend.set_query_engine_factory(None)


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
