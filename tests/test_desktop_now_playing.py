"""The now-playing marker lands on the auditioned track's row when the results are sorted by a header
click (issue 16): the model sorts its rows, so a row number from the answer's own order (what
NowPlaying.follow took) pointed at another track. Real window offscreen, a real clip and music files, an
audition with no audio device (the clip plays alone, the marker still runs)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from media_factory import write_audio, write_video
from PySide6.QtCore import Qt
from viml.desktop.results import ResultsModel, Suggestion
from viml.desktop.waveform import NOW_PLAYING_ROLE


def marked_rows(model: ResultsModel) -> list[str]:
    """The titles of the rows whose picture cell carries the marker."""
    return [
        model.suggestion(row).title
        for row in range(model.rowCount())
        if model.data(model.index(row, ResultsModel.CURVE_COLUMN), NOW_PLAYING_ROLE) is not None
    ]


def test_the_marker_follows_the_track_in_a_sorted_list(qtbot, tmp_path):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    window = MainWindow(settings, audio_device="no-such-device")
    qtbot.addWidget(window)
    window.show()
    clip = write_video(tmp_path / "clip.mp4", seconds=4.0, fps=12.0, size=(64, 48))
    window.open_video(str(clip), 0.5, 3.5)
    qtbot.waitUntil(lambda: window.player.duration > 0 and window.is_idle(), timeout=20000)

    def song(name: str, seconds: float, score: float) -> Suggestion:
        path = write_audio(tmp_path / f"{name}.wav", seconds=seconds, sample_rate=22050)
        return Suggestion(str(path), name, score, 1.0, 3.0, seconds)

    a, b, c = song("A", 12.0, 0.9), song("B", 6.0, 0.8), song("C", 20.0, 0.7)
    window.show_results([a, b, c])
    length = ResultsModel.COLUMNS.index("Length")
    window.results.horizontalHeader().setSortIndicator(length, Qt.DescendingOrder)  # a header click
    model = window.results_model
    assert [model.suggestion(r).title for r in range(3)] == ["C", "A", "B"]

    window.start_audition(2)  # B, the last row as sorted
    qtbot.waitUntil(lambda: window.now_playing.path == b.path and window.player.playing, timeout=30000)
    qtbot.waitUntil(lambda: marked_rows(model) == ["B"], timeout=5000)

    # A new answer in another order: the list keeps its sort, the marker stays on B (row 2), not on the
    # row B had in the answer (0: C).
    window.show_results([b, c, a])
    assert [model.suggestion(r).title for r in range(3)] == ["C", "A", "B"]
    qtbot.waitUntil(lambda: marked_rows(model) == ["B"], timeout=5000)
    window.stop_audition()
    assert marked_rows(model) == []
    qtbot.waitUntil(window.is_idle, timeout=20000)
    window.close()
