"""Desktop pieces offscreen: clip player keys, results drag-out, stale-query cancellation, workers."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from media_factory import read_frame_index, write_video
from PySide6.QtCore import Qt, QUrl
from viml.desktop import workers
from viml.desktop.player import ClipPlayer
from viml.desktop.results import MatchCurveDelegate, ResultsModel, Suggestion


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", seconds=4.0, fps=12, size=(64, 48))


def test_player_in_out_keys_and_transport(qtbot, clip):
    player = ClipPlayer()
    qtbot.addWidget(player)
    player.show()
    with qtbot.waitSignal(player.rangeChanged, timeout=5000):
        player.open(clip)
    assert player.duration == pytest.approx(4.0, abs=0.1)
    assert (player.in_point, player.out_point) == (0.0, player.duration)
    qtbot.waitUntil(lambda: not player.view.image.isNull(), timeout=5000)

    player.seek(1.0)
    qtbot.waitUntil(lambda: abs(player.position() - 1.0) < 0.05)
    qtbot.keyClick(player, Qt.Key_I)
    player.seek(3.0)
    qtbot.waitUntil(lambda: abs(player.position() - 3.0) < 0.05)
    qtbot.keyClick(player, Qt.Key_O)
    assert player.in_point == pytest.approx(1.0, abs=0.05)
    assert player.out_point == pytest.approx(3.0, abs=0.05)
    # The frame on screen is the one at the playhead: frame index 36 at 3.0 s and 12 fps.
    qtbot.waitUntil(lambda: abs(read_frame_index(_rgb(player.view.image)) - 36) <= 1, timeout=3000)

    # I past the out point moves the out point to the end instead of making an empty range.
    player.seek(3.5)
    qtbot.waitUntil(lambda: abs(player.position() - 3.5) < 0.05)
    qtbot.keyClick(player, Qt.Key_I)
    assert player.in_point == pytest.approx(3.5, abs=0.05)
    assert player.out_point == pytest.approx(player.duration)

    player.seek(0.5)
    qtbot.keyClick(player, Qt.Key_Space)
    qtbot.waitUntil(lambda: player.position() > 0.8, timeout=3000)
    assert player.clock.rate == 1.0
    qtbot.keyClick(player, Qt.Key_L)  # already playing: faster
    assert player.player.playbackRate() == 2.0
    qtbot.keyClick(player, Qt.Key_K)
    assert player.clock.rate == 0.0
    before = player.position()
    qtbot.keyClick(player, Qt.Key_J)
    qtbot.waitUntil(lambda: player.position() < before - 0.5, timeout=3000)


def test_player_reports_missing_file(qtbot, tmp_path):
    player = ClipPlayer()
    qtbot.addWidget(player)
    with qtbot.waitSignal(player.failed) as blocker:
        player.open(tmp_path / "gone.mp4")
    assert "not found" in blocker.args[0]
    assert player.path is None


def _rgb(image) -> np.ndarray:
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format_RGB888)
    array = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _suggestion(path: str, score: float) -> Suggestion:
    return Suggestion(
        path, os.path.basename(path), score, 10.0, 5.0, 40.0, ("piano",), np.array([0.1, 0.5, 0.3])
    )


def test_results_drag_out_is_file_urls(qtbot, tmp_path):
    songs = [tmp_path / "a song.flac", tmp_path / "b.mp3"]
    for song in songs:
        song.write_bytes(b"x")
    model = ResultsModel()
    model.set_suggestions([_suggestion(str(songs[0]), 0.9), _suggestion(str(songs[1]), 0.5)])
    assert model.rowCount() == 2
    assert model.data(model.index(0, ResultsModel.COLUMNS.index("Best part"))) == "0:10.0 – 0:15.0"
    assert model.flags(model.index(0, 1)) & Qt.ItemIsDragEnabled
    data = model.mimeData([model.index(1, 1), model.index(1, 2), model.index(0, 0)])
    assert "text/uri-list" in data.formats()
    assert data.urls() == [QUrl.fromLocalFile(str(songs[0])), QUrl.fromLocalFile(str(songs[1]))]
    uri_list = bytes(data.data("text/uri-list")).decode()
    assert uri_list.splitlines()[0] == "file://" + str(songs[0]).replace(" ", "%20")
    assert data.text().splitlines() == [str(songs[0]), str(songs[1])]


def test_match_curve_delegate_paints_curve(qtbot):
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QStyleOptionViewItem

    model = ResultsModel()
    model.set_suggestions([_suggestion("/music/x.wav", 0.7)])
    image = QImage(200, 30, QImage.Format_RGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    painter = QPainter(image)
    MatchCurveDelegate().paint(painter, option, model.index(0, ResultsModel.CURVE_COLUMN))
    painter.end()
    pixels = _rgb(image)
    # The best part (10-15 s of 40 s) is shaded, the rest of the row is not.
    assert pixels[15, 60:70].mean() < 250 and pixels[2, 180:190].mean() == 255
    assert (np.abs(pixels.astype(int) - [0x57, 0xB8, 0x94]).sum(axis=2) < 60).any()  # the curve itself


def test_latest_only_drops_stale_answers(qtbot):
    runner = workers.LatestOnly(debounce_ms=10)
    delivered = []
    runner.result.connect(delivered.append)

    def slow(value, seconds):
        def work(token):
            for _ in range(int(seconds / 0.01)):
                token.checkpoint()
                import time

                time.sleep(0.01)
            return value

        return work

    runner.submit(slow("old", 0.5), immediately=True)
    runner.submit(slow("new", 0.05), immediately=True)
    qtbot.waitUntil(lambda: not runner.running, timeout=3000)
    assert delivered == ["new"]


def test_token_pause_and_cancel(qtbot):
    import time

    progress = []
    task = workers.Task(lambda token: [token.progress(i, 100) for i in range(100)] and "done")
    task.signals.progress.connect(lambda done, total, _message: progress.append(done))
    task.token.pause()
    cancelled = []
    task.signals.cancelled.connect(lambda: cancelled.append(True))
    workers.start(task)
    time.sleep(0.2)
    qtbot.wait(50)
    assert len(progress) <= 1  # paused at its first checkpoint
    task.token.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=2000)


def test_library_updates_in_place_sorted_and_filtered(qtbot):
    """A refresh during a scan changes, adds and removes only the rows that differ (no model reset, the
    selection stays on its track), keeps the chosen sort, and the filter box matches any column."""
    from viml.desktop.backend import LibraryRow
    from viml.desktop.library import LibraryPanel

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    new = [LibraryRow(f"/m/{name}.wav", f"{name}.wav", None, (), "new") for name in ("c", "a", "d", "b")]
    panel.set_rows(new)
    view = panel.table.model()
    titles = lambda: [view.index(r, 0).data() for r in range(view.rowCount())]  # noqa: E731
    assert titles() == ["a.wav", "b.wav", "c.wav", "d.wav"]  # sorted by track from the start
    panel.table.selectRow(2)  # c.wav
    resets = []
    panel.model.modelAboutToBeReset.connect(lambda: resets.append(1))

    # c is analysed (now titled "Zed"), d failed, b vanished from the folder, e is new.
    analysed = LibraryRow("/m/c.wav", "Zed", 12.0, ("piano",), "analysed")
    failed = LibraryRow("/m/d.wav", "d.wav", None, (), "failed", "decode: broken")
    fresh = [new[1], analysed, failed, LibraryRow("/m/e.wav", "e.wav", None, (), "new")]
    assert panel.model.update_rows(fresh) == {"removed": 1, "changed": 2, "added": 1}
    assert not resets
    assert titles() == ["a.wav", "d.wav", "e.wav", "Zed"]
    selected = panel.table.selectionModel().selectedRows()
    assert [index.data() for index in selected] == ["Zed"]  # the selection followed its track
    assert panel.model.update_rows(fresh) == {"removed": 0, "changed": 0, "added": 0}
    assert panel.model.counts() == {"new": 2, "analysed": 1, "failed": 1}

    panel.table.sortByColumn(3, Qt.DescendingOrder)  # by state
    assert [view.index(r, 3).data() for r in range(view.rowCount())] == ["new", "new", "failed", "analysed"]
    panel.filter.setText("PIANO")  # a tag, any case
    assert titles() == ["Zed"]
    panel.filter.setText("")
    assert view.rowCount() == 4


def test_batch_tag_rows_from_viml_tag_json():
    from viml.desktop.dialogs import parse_tag_json

    document = {
        "threshold": 0.3,
        "tracks": [
            {"path": "/m/a.wav", "status": "tagged", "tags": [{"tag": "electronic"}, {"tag": "Electronic"}]},
            {"path": "/m/b.wav", "status": "tagged", "tags": []},
            {"path": "/m/c.wav", "status": "error", "reason": "cannot decode", "tags": []},
        ],
    }
    assert parse_tag_json(document) == [
        ("/m/a.wav", "electronic"),
        ("/m/b.wav", "(no tag above the threshold 0.3)"),
        ("/m/c.wav", "error: cannot decode"),
    ]
