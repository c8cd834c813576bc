"""Library: music folders, background scanning with pause/cancel, and the track list."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from viml.desktop.backend import LibraryRow
from viml.desktop.results import file_mime_data
from viml.desktop.style import format_duration

STATE_COLOURS = {"new": "#c9a227", "analysed": "#57b894", "failed": "#d9534f", "missing": "#d9534f"}


class LibraryModel(QAbstractTableModel):
    COLUMNS = ("Track", "Duration", "Tags", "State")
    RowRole = Qt.UserRole + 1

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[LibraryRow] = []

    def set_rows(self, rows: list[LibraryRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == self.RowRole:
            return row
        if role == Qt.DisplayRole:
            return (row.title, format_duration(row.duration), ", ".join(row.tags), row.state)[column]
        if role == Qt.ToolTipRole:
            return row.path + (f"\n{row.reason}" if row.reason else "")
        if role == Qt.ForegroundRole and column == 3:
            return QColor(STATE_COLOURS.get(row.state, "#888"))
        if role == Qt.UserRole and column == 1:  # sort durations as numbers
            return row.duration or 0.0
        return None

    def flags(self, index: QModelIndex):
        return super().flags(index) | Qt.ItemIsDragEnabled if index.isValid() else Qt.NoItemFlags

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes):
        return file_mime_data(sorted({self.rows[i.row()].path for i in indexes if i.isValid()}))


class LibraryPanel(QWidget):
    """Folders + scan controls + the track list. Emits requests; the window runs the work."""

    addFolderRequested = Signal()
    scanRequested = Signal()
    pauseRequested = Signal(bool)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LibraryModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)

        self.folders = QLabel(self)
        self.folders.setObjectName("hint")
        self.folders.setWordWrap(True)
        add = QPushButton("Add folder…", self)
        self.scan_button = QPushButton("Scan", self)
        self.pause_button = QPushButton("Pause", self, checkable=True)
        self.cancel_button = QPushButton("Cancel", self)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.filter = QLineEdit(self, placeholderText="Filter tracks…", clearButtonEnabled=True)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setDragEnabled(True)
        self.table.setDragDropMode(QAbstractItemView.DragOnly)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeToContents)
        self.summary = QLabel(self)
        self.summary.setObjectName("hint")

        controls = QHBoxLayout()
        for button in (add, self.scan_button, self.pause_button, self.cancel_button):
            controls.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Library</b>", self))
        layout.addWidget(self.folders)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)

        add.clicked.connect(self.addFolderRequested)
        self.scan_button.clicked.connect(self.scanRequested)
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.set_scanning(False)
        self.set_folders([])

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pauseRequested.emit(paused)

    def set_folders(self, folders: list[str]) -> None:
        self.folders.setText("Music folders: " + ("; ".join(folders) if folders else "none yet — add one"))
        self.scan_button.setEnabled(bool(folders))

    def set_scanning(self, scanning: bool) -> None:
        self.pause_button.setEnabled(scanning)
        self.cancel_button.setEnabled(scanning)
        self.pause_button.setChecked(False)
        self.progress.setVisible(scanning)

    def set_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(min(done, total))
        self.progress.setFormat(f"{done} / {total} files")

    def set_rows(self, rows: list[LibraryRow]) -> None:
        self.model.set_rows(rows)
        counts = self.model.counts()
        parts = [
            f"{counts[state]} {state}"
            for state in ("analysed", "new", "failed", "missing")
            if counts.get(state)
        ]
        self.summary.setText(", ".join(parts) if parts else "No tracks yet: add a music folder and scan it.")
