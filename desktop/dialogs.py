"""Dialogs: settings, batch tagging a folder, and picking a clip out of an editor's timeline."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from viml.core.errors import UserFacingError
from viml.desktop import audition as audition_module
from viml.desktop import backend, workers
from viml.desktop.settings import AppSettings
from viml.engine.runtime.providers import PROVIDER_CHOICES

FAILED_PREFIX = "error: "  # how a file `viml tag` could not tag shows in the table


class SettingsDialog(QDialog):
    """The choices the app and the engine read, in groups: models, library, audition, and the language
    model `viml synth` uses (the settings file is shared with the CLI)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(640)  # a catalog or bundle path reads whole
        self.settings = settings
        self.bundle = QLineEdit(
            settings.bundle or "", placeholderText="the default bundle (viml bundle default)"
        )
        self.catalog = QLineEdit(settings.catalog or "", placeholderText=str(backend.catalog_path(None)))
        self.provider = QComboBox()
        self.provider.addItems(list(PROVIDER_CHOICES))
        self.provider.setCurrentText(settings.provider)
        self.provider.setToolTip(
            "Where every model runs (onnxruntime): auto uses CUDA when it really works, else the CPU. "
            "VIML_PROVIDER, when set, wins."
        )
        self.device = QComboBox()
        self.device.setToolTip("The audio output auditions play through")
        self._show_devices([])  # the system default and the stored choice, until the list comes
        self.llm = QLineEdit(settings.llm_url or "", placeholderText="http://localhost:8080/v1 (optional)")
        self.llm_model = QLineEdit(settings.llm_model or "", placeholderText="model name on that server")

        models = self._group("Models", ("Model bundle", self.bundle), ("Run models on", self.provider))
        library = self._group("Library", ("Catalog file", self.catalog))
        audition = self._group("Audition", ("Audio output", self.device))
        hint = QLabel("Loop and preview volume are beside the player.")
        hint.setObjectName("hint")
        audition.layout().addRow(hint)
        synth = self._group(
            "Language model for viml synth (command line)", ("Server", self.llm), ("Model", self.llm_model)
        )
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for group in (models, library, audition, synth):
            layout.addWidget(group)
        layout.addStretch(1)
        layout.addWidget(buttons)
        # One label column across the groups (each form sizes its own), so the fields line up.
        labels = [group.layout().itemAt(row, QFormLayout.LabelRole) for group in (models, library, audition, synth)
                  for row in range(group.layout().rowCount())]  # fmt: skip
        labels = [item.widget() for item in labels if item is not None and item.widget() is not None]
        widest = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(widest)

        # PortAudio asks every sound card when it lists them: slow on some systems, so off the GUI thread.
        self._devices_task = workers.Task(lambda token: audition_module.output_devices())
        self._devices_task.signals.result.connect(self._show_devices)
        self._devices_task.signals.error.connect(self.device.setToolTip)
        workers.start_held(self._devices_task)

    def _group(self, title: str, *rows: tuple[str, QWidget]) -> QGroupBox:
        group = QGroupBox(title, self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for label, field in rows:
            form.addRow(label, field)
        return group

    def _show_devices(self, devices: list) -> None:
        """System default first, then every output; a stored one that is not connected stays listed (and
        chosen), so opening and closing the dialog never loses it."""
        wanted = self.device.currentData() if self.device.count() else self.settings.audio_device
        self.device.clear()
        self.device.addItem("System default", None)
        for device in devices:
            self.device.addItem(device.label + ("  (system default)" if device.default else ""), device.name)
        if wanted is not None and self.device.findData(wanted) < 0:
            self.device.addItem(f"{wanted} (not connected)" if devices else wanted, wanted)
        self.device.setCurrentIndex(max(self.device.findData(wanted), 0))

    def accept(self) -> None:
        self.settings.bundle = self.bundle.text().strip() or None
        self.settings.catalog = self.catalog.text().strip() or None
        self.settings.provider = self.provider.currentText()
        self.settings.audio_device = self.device.currentData()
        self.settings.llm_url = self.llm.text().strip() or None
        self.settings.llm_model = self.llm_model.text().strip() or None
        super().accept()


class ChildTaskDialog(QDialog):
    """A dialog that runs one task around a child process (batch tag, learning): its start and stop
    buttons and progress bar follow the task, and closing the dialog (or Esc) stops it, so nothing goes
    on running unseen. Subclasses make `start_button`, `cancel_button`, `progress` and `status`."""

    start_button: QPushButton
    cancel_button: QPushButton
    progress: QProgressBar
    status: QLabel
    task: workers.Task | None = None

    def run_task(self, task: workers.Task) -> None:
        self.task = task
        task.signals.error.connect(self.status.setText)
        task.signals.finished.connect(self._finished)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.show()
        workers.start(task)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.token.cancel()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.cancel()
        super().closeEvent(event)

    def reject(self) -> None:  # Esc
        self.cancel()
        super().reject()

    def _finished(self) -> None:
        self.task = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.hide()


class BatchTagDialog(ChildTaskDialog):
    """Tag a folder with the music model through `viml tag` (optionally writing tags into the files)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch tag a folder")
        self.resize(640, 420)
        self.folder = QLineEdit(placeholderText="Music folder to tag")
        browse = QPushButton("Browse…")
        self.write_tags = QCheckBox("Write genre/mood into the files (MusicBrainz Picard conventions)")
        self.start_button = QPushButton("Tag")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.status = QLabel("Tags come from the music model; nothing is written unless you tick the box.")
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Tags"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        actions = QHBoxLayout()
        actions.addWidget(self.write_tags, 1)
        actions.addWidget(self.start_button)
        actions.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        browse.clicked.connect(self._browse)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.settings = settings

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to tag")
        if folder:
            self.folder.setText(folder)

    def start(self) -> None:
        folder = self.folder.text().strip()
        if not os.path.isdir(folder):
            self.status.setText(f"{folder or 'Nothing'}: choose an existing folder")
            return
        write = self.write_tags.isChecked()
        catalog = backend.catalog_path(self.settings.catalog)
        bundle = self.settings.bundle
        task = workers.Task(lambda token: run_tag_command(folder, write, token, catalog, bundle))
        task.signals.result.connect(self.show_tags)
        task.signals.cancelled.connect(lambda: self.status.setText("Cancelled."))
        self.status.setText(f"Tagging {folder}…")
        self.run_task(task)

    def show_tags(self, rows: list[tuple[str, str]]) -> None:
        self.table.setRowCount(len(rows))
        for number, (path, tags) in enumerate(rows):
            self.table.setItem(number, 0, QTableWidgetItem(os.path.basename(path)))
            self.table.setItem(number, 1, QTableWidgetItem(tags))
            self.table.item(number, 0).setToolTip(path)
            self.table.item(number, 1).setToolTip(tags)
        self.table.resizeColumnToContents(0)
        failed = sum(1 for _path, shown in rows if shown.startswith(FAILED_PREFIX))
        self.status.setText(f"{len(rows) - failed} of {len(rows)} files tagged, {failed} failed.")


def run_tag_command(
    folder: str,
    write: bool,
    token: workers.Token,
    catalog: Path | None = None,
    bundle: str | None = None,
) -> list[tuple[str, str]]:
    """`viml tag FOLDER --json FILE` in a child process (cancellable); (path, tags) per file. The files are
    analysed into the app's catalog with its bundle, so the library and search see them too."""
    with tempfile.TemporaryDirectory() as scratch:
        output = os.path.join(scratch, "tags.json")
        command = [*backend.VIML_COMMAND, "tag", folder, "--json", output]
        if catalog is not None:
            command += ["--catalog", str(catalog)]
        if bundle:
            command += ["--bundle", bundle]
        if write:  # without --apply, --write-tags only plans the writes
            command += ["--write-tags", "--apply"]
        lines: list[str] = []
        returncode, _ = workers.run_child(
            command, token, lambda line: line.strip() and lines.append(line.strip())
        )
        # `viml tag` exits 1 when any file failed, yet its JSON holds every good file's tags and every
        # bad file's reason: read it whenever it was written, and raise only when there is none.
        data = None
        if os.path.isfile(output):
            with open(output, encoding="utf-8") as stream, contextlib.suppress(ValueError):
                data = json.load(stream)
        if data is None:
            raise UserFacingError(lines[-1] if lines else f"viml tag failed (exit status {returncode})")
    return parse_tag_json(data)


def parse_tag_json(data) -> list[tuple[str, str]]:
    """Accepts `viml tag --json` output ({"tracks": [...]}, or a bare list); (path, shown tags) per file."""
    items = data.get("files", data.get("tracks", [])) if isinstance(data, dict) else data
    threshold = data.get("threshold") if isinstance(data, dict) else None
    rows = []
    for item in items:
        tags = item.get("top_tags") or item.get("tags") or []
        names = [t if isinstance(t, str) else t.get("tag", "") for t in tags]
        # Two vocabularies (MTT, MSD) often name the same tag: show it once.
        shown = ", ".join(dict.fromkeys(name.lower() for name in names if name))
        status = item.get("status", "tagged")
        if status != "tagged":
            reason = item.get("reason") or item.get("error") or "no reason given"
            shown = f"{FAILED_PREFIX}{reason}" if status == "error" else f"{status}: {reason}"
        elif not shown:
            shown = "(no tag above the threshold" + (f" {threshold}" if threshold is not None else "") + ")"
        rows.append((item.get("path", "?"), shown))
    return rows


def pick_timeline_clip(window, path: str) -> None:
    """Read a timeline in the background, then let the user choose which clip to open."""

    def chosen(clips) -> None:
        if not clips:
            window.show_message(f"{path}: no clips with local media in this timeline")
            return
        labels = [f"{name}  ({start:.1f}–{end:.1f} s)" for name, _media, start, end in clips]
        label, ok = QInputDialog.getItem(window, "Pick a clip", "Clip from the timeline:", labels, 0, False)
        if ok:
            name, media, start, end = clips[labels.index(label)]
            window.open_video(media, start, end, timeline=path)

    task = workers.Task(lambda token: backend.timeline_clips(path))
    task.signals.result.connect(chosen, Qt.QueuedConnection)
    task.signals.error.connect(window.show_message)
    workers.start(window.keep(task))
