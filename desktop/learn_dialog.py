"""Learn from my edits (Tools menu): `viml learn` on past timelines in a child process, with its
progress bars read off its stderr and its report (held-out figures, the default decision, every pair
skipped with why) read off its JSON. The child keeps the GUI's interpreter free and can be stopped at
any moment: a later start with the same edits resumes from the last finished epoch (the run folder)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from viml.core.errors import UserFacingError
from viml.desktop import backend, workers
from viml.desktop.dialogs import ChildTaskDialog
from viml.desktop.settings import AppSettings

TIMELINE_FILTER = "Timelines (*.otio *.xml *.fcpxml *.kdenlive *.xges *.aaf *.edl);;All files (*)"
STAGES = {"features": "Reading your edits", "train": "Training"}  # tqdm's desc -> what the user reads
# One tqdm update: "train:  40%|████      | 120/300 [00:05<00:07, 24.1step/s]"
_BAR = re.compile(r"(?P<desc>[\w ]+?):\s+\d+%\|[^|]*\|\s*(?P<done>\d+)/(?P<total>\d+)")
EPOCHS = 40  # viml learn's default


class LearnDialog(ChildTaskDialog):
    """Choose past edits (timeline files or folders), train, read the report."""

    learned = Signal(bool)  # a new bundle was written; True: it is now the default (reopen it)

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Learn from my edits")
        self.resize(720, 520)
        self.settings = settings
        intro = QLabel(
            "Your past edits teach a model which music you cut to which pictures. Add finished timelines "
            "(.otio, Premiere/Resolve .xml, .fcpxml, .kdenlive, .xges, .aaf, .edl) or folders of them; "
            "their music must be in the library. Whole projects are held out to check the new model."
        )
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        self.sources = QListWidget()
        self.sources.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        add_folder, add_files, remove = (
            QPushButton("Add folder…"),
            QPushButton("Add timelines…"),
            QPushButton("Remove"),
        )
        self.from_marks = QCheckBox("Also the tracks marked “Used in this edit”")
        self.keep_default = QCheckBox("Keep the current bundle as the default")
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=EPOCHS, suffix=" passes")
        self.epochs.setToolTip("Passes over your edits; the best one on a share of your projects is kept")
        self.start_button, self.cancel_button = QPushButton("Learn"), QPushButton("Stop")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.skipped = QTableWidget(0, 3)
        self.skipped.setHorizontalHeaderLabels(["Project", "Clip", "Why it was left out"])
        self.skipped.horizontalHeader().setStretchLastSection(True)
        self.skipped.verticalHeader().hide()
        self.skipped.hide()
        buttons = QHBoxLayout()
        for button in (add_folder, add_files, remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        options = QHBoxLayout()
        options.addWidget(self.from_marks)
        options.addWidget(self.keep_default)
        options.addStretch(1)
        options.addWidget(self.epochs)
        options.addWidget(self.start_button)
        options.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.sources, 1)
        layout.addLayout(buttons)
        layout.addLayout(options)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addWidget(self.skipped, 2)
        add_folder.clicked.connect(self._add_folder)
        add_files.clicked.connect(self._add_files)
        remove.clicked.connect(self._remove_selected)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    # -- the edits --------------------------------------------------------------------------------
    def add_sources(self, paths: list[str]) -> None:
        present = set(self.source_paths())
        for path in paths:
            if path and path not in present:
                self.sources.addItem(path)
                present.add(path)

    def source_paths(self) -> list[str]:
        return [self.sources.item(row).text() for row in range(self.sources.count())]

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of past edits")
        self.add_sources([folder])

    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Past edits", "", TIMELINE_FILTER)
        self.add_sources(files)

    def _remove_selected(self) -> None:
        for item in self.sources.selectedItems():
            self.sources.takeItem(self.sources.row(item))

    # -- the run ----------------------------------------------------------------------------------
    def start(self) -> None:
        sources, from_marks = self.source_paths(), self.from_marks.isChecked()
        if not sources and not from_marks:
            self.status.setText("Add past timelines (or folders of them), or tick the used marks.")
            return
        command = learn_command(sources, from_marks, self.keep_default.isChecked(), self.epochs.value(),
                                backend.catalog_path(self.settings.catalog), self.settings.bundle)  # fmt: skip
        task = workers.Task(lambda token: run_learn_command(command, token))
        task.signals.progress.connect(self._show_progress)
        task.signals.result.connect(self.show_report)
        task.signals.cancelled.connect(
            lambda: self.status.setText(
                "Stopped. Learn again with the same edits to go on from the last pass."
            )
        )
        self.progress.setRange(0, 0)
        self.summary.clear()
        self.skipped.hide()
        self.status.setText("Reading your edits…")
        self.run_task(task)

    def _show_progress(self, done: int, total: int, stage: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.status.setText(f"{STAGES.get(stage, stage.capitalize())}: {done} of {total}")

    def show_report(self, report: dict) -> None:
        skipped = report.get("skipped") or []
        self.skipped.setRowCount(len(skipped))
        for row, skip in enumerate(skipped):
            for column, key in enumerate(("project", "what", "why")):
                text = str(skip.get(key, ""))
                item = QTableWidgetItem(os.path.basename(text) if key != "why" else text)
                item.setToolTip(text)
                self.skipped.setItem(row, column, item)
        for column in (0, 1):  # the names whole (up to a third of the table each), the reason gets the rest
            self.skipped.resizeColumnToContents(column)
            self.skipped.setColumnWidth(
                column, min(self.skipped.columnWidth(column), self.skipped.width() // 3)
            )
        self.skipped.setVisible(bool(skipped))
        if "error" in report:  # too few usable pairs: nothing was trained
            self.status.setText(report["error"])
            return
        self.status.setText(report_headline(report))
        self.summary.setText(report_details(report))
        self.learned.emit(bool(report.get("made default")))


def learn_command(
    sources: list[str],
    from_marks: bool,
    keep_default: bool,
    epochs: int,
    catalog: Path | None,
    bundle: str | None,
) -> list[str]:
    command = [*backend.VIML_COMMAND, "learn", *sources, "--json", "--progress", "--epochs", str(epochs)]
    if from_marks:
        command.append("--from-marks")
    if keep_default:
        command.append("--no-default")
    if catalog is not None:
        command += ["--catalog", str(catalog)]
    if bundle:
        command += ["--bundle", bundle]
    return command


def run_learn_command(command: list[str], token: workers.Token) -> dict:
    """Run `viml learn … --json --progress` (workers.run_child: cancellable); its report, or for too few
    usable pairs its error with the skips. Its progress bars become the task's progress."""
    errors = ProgressReader()
    shown = None

    def show_progress() -> None:
        nonlocal shown
        if errors.latest is not None and errors.latest != shown:
            shown = errors.latest
            token.progress(shown[1], shown[2], shown[0])  # raises Cancelled once cancelled

    returncode, output = workers.run_child(command, token, errors.feed, show_progress)
    text = output.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError, IndexError):
        report = json.loads(text.splitlines()[-1])
        if isinstance(report, dict) and (returncode == 0 or "error" in report):
            return report
    problem = errors.last_line() or f"viml learn stopped (exit status {returncode})"
    raise UserFacingError(problem.removeprefix("error: "))


class ProgressReader:
    """A child's stderr, piece by piece (`feed`): the latest tqdm bar as (stage, done, total), and its
    last other line (the error message, when the child fails)."""

    def __init__(self) -> None:
        self.latest: tuple[str, int, int] | None = None
        self.lines: list[str] = []

    def feed(self, piece: str) -> None:
        bar = _BAR.search(piece)
        if bar:
            self.latest = (bar["desc"].strip(), int(bar["done"]), int(bar["total"]))
        elif piece.strip():
            self.lines = [*self.lines[-19:], piece.strip()]

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""


def report_headline(report: dict) -> str:
    """'Bundle "learned-…" written, trained on 40 pairs from 6 projects. <the default decision>'"""
    decision = str(report.get("default decision", ""))
    return (
        f"Bundle “{report.get('bundle')}” written, trained on {report.get('training pairs')} pairs from "
        f"{report.get('training projects')} project(s). {decision[:1].upper()}{decision[1:]}."
    )


def report_details(report: dict) -> str:
    new, old = report.get("held-out metrics, new bundle"), report.get("held-out metrics, start bundle")
    if not new or not old:
        return "Nothing was held out to compare with (one project only): the new bundle is not the default."
    return (
        f"On {report.get('held-out pairs')} held-out edits from {len(report.get('held-out projects') or [])} "
        f"project(s), each clip's music ranked among {new.get('pool')} tracks — new: median rank "
        f"{new.get('median rank'):g}, {new.get('R@10'):.1f}% in the top 10; "
        f"“{report.get('start bundle')}” (the start): median rank {old.get('median rank'):g}, "
        f"{old.get('R@10'):.1f}% in the top 10."
    )
