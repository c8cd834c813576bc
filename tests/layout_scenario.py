"""A populated main window and what its layout gets wrong at a given size (issue 16: layouts that hold).

`populated_window` fills the window the way a user's day does: music folders with long paths, a library
with long titles and failed files with their reasons, a clip opened, twenty suggestions with artists,
BPM, keys, tags and waveforms, the first run's long standing problems and a long status message.
`layout_problems` lists what does not hold: a window that would not take the size asked for (minimum
sizes forcing it larger), a widget outside its parent (so outside the window), a button narrower than
its text, a wrapped message taller than its room, a column narrower than its content or header.

test_desktop_layout.py runs it offscreen in-process, and in a real X server as a script:

    python tests/layout_scenario.py WORK_FOLDER 1280x720 1024x640 ...   # prints one JSON object
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

SIZES = ((1920, 1080), (1280, 720), (1024, 640))
LONG_PROBLEM = (
    "the music model is not converted yet (/home/editor/.local/share/viml/models/musicnn/manifest.json "
    "is missing); run `viml convert-musicnn` once, then scan the folder again — "
    "every file of it stays listed as not scanned until then"
)
LONG_MESSAGE = (
    "Timeline not written: /media/editor/Projects/2024 Client documentary — final cut/exports/"
    "viml-timeline-with-a-very-long-name.otio: permission denied (the folder is read-only)"
)
TITLES = (
    "Sunrise Over the Quiet Harbour (Extended Orchestral Version)",
    "Night Drive",
    "Tense Dark Synths for the Chase Scene, Part II",
    "Calm Piano",
    "A Very Long Title That An Editor's Library Really Has — Remastered 2021 Deluxe Edition",
    "Energetic Rock With Drums",
)
ARTISTS = ("The Harbour Strings Ensemble and Friends", "Nightwalker", "", "Ana Sousa", "Studio Library")


def wait(app, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not settle")
        app.processEvents()
        time.sleep(0.01)


def suggestions(folder: Path, count: int = 20) -> list:
    """Ranked results as the search gives them, with the waveform the scan stores."""
    from viml.desktop.results import Suggestion
    from viml.desktop.why import Why
    from viml.engine.music.waveform import waveform_of

    rate, rng = 4000, np.random.default_rng(7)
    rows = []
    for rank in range(1, count + 1):
        duration = 90.0 + 13.0 * rank
        level = 0.2 + 0.6 * np.abs(np.sin(np.linspace(0, 9 + rank, int(duration * rate))))
        signal = (level * rng.standard_normal(level.size) * 0.3).astype(np.float32)
        starts = np.arange(0.0, duration - 10.0, 2.0)
        rows.append(
            Suggestion(
                path=str(folder / f"track {rank:02d}.wav"),
                title=TITLES[rank % len(TITLES)] + (f" {rank}" if rank > len(TITLES) else ""),
                score=0.9 - rank * 0.02,
                offset=12.0 + rank,
                length=8.0,
                duration=duration,
                tags=("piano", "ambient", "slow", "strings")[: 1 + rank % 4],
                curve=rng.random(int(duration // 10), dtype=np.float32),
                curve_step=10.0,
                rank=rank,
                artist=ARTISTS[rank % len(ARTISTS)],
                bpm=None if rank % 3 else 120.0 + rank,
                measured_bpm=96.0 + rank,
                key=("F#m", "8A", "", "C")[rank % 4],
                clip_length=8.0,
                waveform=waveform_of(signal, rate),
                fine_curve=np.column_stack([starts, rng.random(starts.size)]),
                downbeats=(12.0 + rank, 14.0 + rank, 16.0 + rank),
                sections=(0.0, 30.0, 60.0),
                why=Why(),
            )
        )
    return rows


def library_rows(folder: Path) -> list:
    from viml.desktop.backend import LibraryRow

    rows = [
        LibraryRow(str(folder / f"{n:02d} {title}.wav"), title, 95.0 + n, ("piano", "calm", "strings"),
                   "analysed")
        for n, title in enumerate(TITLES * 4)
    ]  # fmt: skip
    rows.append(LibraryRow(str(folder / "broken.wav"), "broken.wav", None, (), "failed",
                           "undecodable: not a readable media file (Invalid data found when processing input)"))  # fmt: skip
    return rows


def populated_window(work: Path, size: tuple[int, int]):
    """The main window at `size`, shown, filled as described above, every background task done."""
    from media_factory import write_video
    from viml.desktop.app import create_application, wait_until_idle
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    app = create_application()
    work.mkdir(parents=True, exist_ok=True)
    music = work / "Music Library" / "Production music — licensed 2024" / "Orchestral and ambient"
    music.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    if not clip.exists():
        write_video(clip, seconds=3.0, fps=12.0, size=(160, 90))
    settings = AppSettings()
    settings.catalog = str(work / "catalog.sqlite")
    settings.bundle = str(work / "no-bundle-here")  # the first run's "No suggestions: ..." line
    settings.music_folders = [str(music), str(work / "Other music")]
    window = MainWindow(settings, audio_device="no-such-device")
    window.resize(*size)
    window.show()
    wait_until_idle(app, window)
    window.open_video(str(clip), 0.5, 2.5)
    wait(app, lambda: window.player.duration > 0)
    wait_until_idle(app, window)
    window.library.set_problem(f"scan:{music}", f"{music.name} not scanned: {LONG_PROBLEM}")
    window.library.set_rows(library_rows(music))
    window.show_results(suggestions(music))
    window.results_hint.setText(LONG_MESSAGE)
    window.show_message(LONG_MESSAGE)
    window.resize(*size)  # again: what the content asks for must not have grown it
    wait_until_idle(app, window, settle_seconds=0.3)
    return window


def problems_at(window, size: tuple[int, int]) -> list[str]:
    """`layout_problems` with the search bar's filters folded, then open (two more rows)."""
    from PySide6.QtWidgets import QApplication

    problems = layout_problems(window, size)
    window.search_bar.filters_button.setChecked(True)
    window.resize(*size)
    for _ in range(3):
        QApplication.processEvents()
    problems += [f"filters open: {problem}" for problem in layout_problems(window, size)]
    window.search_bar.filters_button.setChecked(False)
    QApplication.processEvents()
    return problems


def _outside(rect, bounds) -> bool:
    return not bounds.contains(rect)


def layout_problems(window, size: tuple[int, int]) -> list[str]:
    """What does not hold in the main window at `size` (empty: the layout holds)."""
    problems = []
    if (window.width(), window.height()) != size:
        hint = window.minimumSizeHint()
        problems.append(
            f"window is {window.width()}x{window.height()}, not {size[0]}x{size[1]} "
            f"(its minimum size hint: {hint.width()}x{hint.height()})"
        )
    problems += widget_problems(window)
    status = window.statusBar()
    if status.currentMessage() and status.toolTip() != status.currentMessage():
        problems.append("the status bar's message is not whole in its tooltip")
    problems += picture_problems(window)
    return problems


def dialog_problems(dialog, screen: tuple[int, int] = SIZES[-1]) -> list[str]:
    """A dialog at the size it opens with: it fits the smallest screen, what `widget_problems` checks,
    and every text box is wide enough for its placeholder and its text (a path reads whole)."""
    from PySide6.QtWidgets import QLineEdit

    problems = widget_problems(dialog)
    if dialog.width() > screen[0] or dialog.height() > screen[1]:
        problems.append(
            f"the dialog is {dialog.width()}x{dialog.height()}, larger than {screen[0]}x{screen[1]}"
        )
    for box in dialog.findChildren(QLineEdit):
        for text in (box.placeholderText(), box.text()):
            needed = box.fontMetrics().horizontalAdvance(text) + 12  # the frame and text margins
            if box.isVisible() and box.width() < needed:
                problems.append(f"the {text[:30]!r} box is {box.width()} px wide, its text needs {needed}")
    return problems


def _name(widget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    label = widget.objectName() or (text[:30] if isinstance(text, str) else "")
    return f"{type(widget).__name__}({label!r})"


def widget_problems(top) -> list[str]:
    """Every visible widget of the window `top`: inside it and inside its parent, not collapsed; buttons
    as wide as their text; wrapped labels as tall as their text, one-line ones as wide (or eliding, with
    the text in a tooltip); tables' columns as wide as their headers (and content-sized ones as their
    content)."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import (
        QAbstractScrollArea,
        QLabel,
        QPushButton,
        QSizePolicy,
        QTableView,
        QToolButton,
        QWidget,
    )

    problems = []
    scrolled = set()  # widgets scrolled inside a view's viewport: clipped by design
    for area in top.findChildren(QAbstractScrollArea):
        scrolled.update(id(child) for child in area.viewport().findChildren(QWidget))
    for widget in top.findChildren(QWidget):
        if not widget.isVisible() or widget.isWindow() or id(widget) in scrolled:
            continue
        name, parent = _name(widget), widget.parentWidget()
        corner = widget.mapTo(top, widget.rect().topLeft())
        if _outside(QRect(corner, widget.size()), top.rect()):
            problems.append(
                f"{name} at {corner.toTuple()} {widget.width()}x{widget.height()} is outside the window"
            )
        elif parent is not None and _outside(widget.geometry(), QRect(0, 0, parent.width(), parent.height())):
            problems.append(f"{name} at {widget.geometry().getRect()} is outside {_name(parent)} "
                            f"({parent.width()}x{parent.height()})")  # fmt: skip
        if widget.width() <= 0 or widget.height() <= 0:
            problems.append(f"{name} is collapsed to {widget.width()}x{widget.height()}")
        if isinstance(widget, (QPushButton, QToolButton)) and widget.width() < widget.sizeHint().width():
            problems.append(f"{name} is {widget.width()} px wide, its text needs {widget.sizeHint().width()}")
        if not isinstance(widget, QLabel) or not widget.text():
            continue
        elided = widget.fontMetrics().horizontalAdvance(widget.text()) > widget.width()
        if type(widget).__name__ == "ElidingLabel" and elided and not widget.toolTip():
            problems.append(f"{name} elides {widget.text()[:30]!r} without a tooltip")
        if widget.wordWrap() and widget.height() < widget.heightForWidth(widget.width()):
            problems.append(f"{name} is {widget.height()} px tall, its wrapped text needs "
                            f"{widget.heightForWidth(widget.width())}")  # fmt: skip
        one_line = not widget.wordWrap() and widget.sizePolicy().horizontalPolicy() != QSizePolicy.Ignored
        if one_line and widget.width() < widget.minimumSizeHint().width():
            problems.append(f"{name} is {widget.width()} px wide, its text needs "
                            f"{widget.minimumSizeHint().width()}")  # fmt: skip
    for table in top.findChildren(QTableView):
        if table.isVisible():
            problems += column_problems(table)
    return problems


def picture_problems(window) -> list[str]:
    """The results' picture (waveform, match, clip) and the columns before it seen whole, unscrolled."""
    from viml.desktop.results import ResultsModel

    view, header = window.results, window.results.horizontalHeader()
    column = ResultsModel.CURVE_COLUMN
    right = header.sectionPosition(column) + header.sectionSize(column)  # from the table's left edge
    if right > view.viewport().width():
        return [f"the results' picture ends at {right} px, past the table's {view.viewport().width()}"]
    return []


def column_problems(table) -> list[str]:
    """Columns narrower than their header's text, or (content-sized ones) than their content."""
    from PySide6.QtWidgets import QHeaderView

    problems = []
    header, model = table.horizontalHeader(), table.model()
    for column in range(header.count()):
        if header.isSectionHidden(column):
            continue
        title = model.headerData(column, header.orientation())
        width = header.sectionSize(column)
        if width < header.sectionSizeHint(column):
            problems.append(
                f"column {title!r} is {width} px, its header needs {header.sectionSizeHint(column)}"
            )
        if header.sectionResizeMode(column) == QHeaderView.ResizeToContents:
            content = table.sizeHintForColumn(column)
            if width < content:
                problems.append(f"column {title!r} is {width} px, its content needs {content}")
    return problems


def main(work: Path, sizes: list[str]) -> None:
    from viml.desktop.app import create_application

    app = create_application()
    report: dict = {"platform": app.platformName(), "sizes": {}}
    for text in sizes:
        size = tuple(int(v) for v in text.split("x"))
        window = populated_window(work, size)
        report["sizes"][text] = problems_at(window, size)
        window.close()
        window.deleteLater()
        app.processEvents()
    print(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
