"""Run by test_desktop_x11.py on an Xvfb display (Qt's xcb platform): real drags of a suggestion (started
from the results view as the app starts them) and of a library track, let go over the app's own widgets;
prints one JSON object with what each drop did.

    python tests/x11_drag_scenario.py WORK_FOLDER
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from media_factory import write_audio


def main(work: Path) -> None:
    from PySide6.QtTest import QTest
    from viml.desktop.app import create_application, wait_until_idle
    from viml.desktop.main_window import MainWindow
    from viml.desktop.results import Suggestion, file_mime_data
    from viml.desktop.settings import AppSettings

    app = create_application()
    library = work / "library"
    (library / "sub").mkdir(parents=True)
    in_library = write_audio(library / "sub" / "listed.wav", seconds=3.0, sample_rate=22050)
    elsewhere = work / "elsewhere"  # the suggestion's folder: not (yet) a music folder of the app
    elsewhere.mkdir()
    track = write_audio(elsewhere / "song.wav", seconds=6.0, sample_rate=22050)
    settings = AppSettings()
    settings.catalog = str(work / "catalog.sqlite")
    settings.music_folders = [str(library)]
    window = MainWindow(settings, audio_device="no-such-device")
    window.resize(1280, 800)
    window.show()
    QTest.qWaitForWindowExposed(window)
    wait_until_idle(app, window)
    window.show_results([Suggestion(str(track), "song", 0.5, 1.0, 3.0, 6.0, (), np.zeros(1, np.float32))])
    deadline = time.monotonic() + 30
    while window.library.model.rowCount() == 0 and time.monotonic() < deadline:  # listed as new
        app.processEvents()
    sources = {
        "suggestion": lambda: window.results.exec_drag(file_mime_data([str(track)]), track.name),
        "library track": lambda: drag_row(window.library.table),
    }
    guard = getattr(window, "drop_guard", None)
    seen = DragEvents(app)
    targets = {
        "library table": window.library.table.viewport(),
        "library filter": window.library.filter,
        "player": window.player.view,
        "prompt": window.prompt,
        "results": window.results.viewport(),
    }
    report: dict = {"platform": app.platformName(), "library file": str(in_library), "drops": {}}
    for source, drag in sources.items():
        for name, widget in targets.items():
            before = seen.count
            result = drop(app, window, guard, drag, widget)
            report["drops"][f"{source} onto {name}"] = {**result, "drag events": seen.count - before}
    window.close()
    print(json.dumps(report))


def drag_row(table) -> None:
    """The table's own drag (QAbstractItemView.startDrag: a QDrag of the model's data) of its first row."""
    from PySide6.QtCore import Qt

    table.selectRow(0)
    table.startDrag(Qt.CopyAction)


class DragEvents:
    """Counts the drag events Qt delivers in this application (the drag did reach the window)."""

    def __init__(self, app) -> None:
        from PySide6.QtCore import QEvent, QObject

        kinds = (QEvent.DragEnter, QEvent.DragMove, QEvent.Drop)
        self.count = 0
        counter = self

        class Filter(QObject):
            def eventFilter(self, watched, event) -> bool:
                if event.type() in kinds:
                    counter.count += 1
                return False

        self.filter = Filter()
        app.installEventFilter(self.filter)


def drop(app, window, guard, drag, widget) -> dict:
    """Run `drag` (Qt's nested drag loop), moving to `widget` and letting go there; what it changed."""
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest
    from viml.desktop.app import wait_until_idle

    prompt, needle, folders = (
        window.prompt.text(),
        window.library.filter.text(),
        window.settings.music_folders,
    )
    refused = guard.refused if guard is not None else 0
    point = widget.mapTo(window, widget.rect().center())

    def let_go() -> None:
        # Qt's xcb drag follows these moves (its event filter on the application) and drops on release.
        QTest.mouseMove(window, point)
        QTimer.singleShot(150, lambda: QTest.mouseMove(window, point + QPoint(2, 2)))
        QTimer.singleShot(
            350, lambda: QTest.mouseRelease(window, Qt.LeftButton, Qt.NoModifier, point + QPoint(2, 2))
        )

    QTimer.singleShot(200, let_go)
    action = drag()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    result = {
        "action": getattr(action, "name", str(action)),
        "folders": window.settings.music_folders,
        "scanning": window.scan_task is not None or bool(window.scan_queue),
        "prompt changed": window.prompt.text() != prompt,
        "filter changed": window.library.filter.text() != needle,
        "refused": (guard.refused if guard is not None else 0) - refused,
    }
    window.cancel_scan()
    wait_until_idle(app, window)
    window.settings.music_folders = folders
    window.library.set_folders(folders)
    window.prompt.setText(prompt)
    window.library.filter.setText(needle)
    wait_until_idle(app, window)
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1]))
