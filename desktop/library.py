"""Library: music folders, background scanning with pause/cancel, and the track list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
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
from viml.desktop.table_model import RowsTableModel

if TYPE_CHECKING:
    from collections.abc import Callable

STATE_COLOURS = {"new": "#c9a227", "analysed": "#57b894", "failed": "#d9534f", "missing": "#d9534f"}


class LibraryModel(RowsTableModel):
    """The track list, updated in place: a rescan changes, adds or removes only the rows that differ.

    A model reset over thousands of rows costs the GUI thread hundreds of milliseconds (every view and
    proxy re-reads every row through Python), so `update_rows` touches only what changed. The model
    sorts itself (a Python sort over precomputed keys, ~1 ms for 10,000 rows) instead of letting a
    QSortFilterProxyModel compare rows through thousands of `data()` calls.
    """

    COLUMNS = ("Track", "Duration", "Tags", "State")
    RowRole = Qt.UserRole + 1

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[LibraryRow] = []
        self._index: dict[str, int] = {}  # path -> row
        self._text: list[tuple[str, str, str, str]] = []  # display strings, computed once per row
        self._sort: tuple[int, Qt.SortOrder] | None = None

    @staticmethod
    def _display(row: LibraryRow) -> tuple[str, str, str, str]:
        return (row.title, format_duration(row.duration), ", ".join(row.tags), row.state)

    def _reindex(self) -> None:
        self._index = {row.path: i for i, row in enumerate(self.rows)}

    def set_rows(self, rows: list[LibraryRow]) -> None:
        """Replace everything (first load); later refreshes go through `update_rows`."""
        self.beginResetModel()
        self.rows = list(rows)
        self._text = [self._display(row) for row in self.rows]
        self._reindex()
        self._sort_rows()
        self.endResetModel()

    def update_rows(self, rows: list[LibraryRow]) -> dict[str, int]:
        """Apply a fresh read of the library as removals, in-place changes and one append; then re-sort
        only if the order broke. Returns how many rows were removed, changed and added."""
        if not self.rows:
            self.set_rows(rows)
            return {"removed": 0, "changed": 0, "added": len(rows)}
        fresh = {row.path: row for row in rows}
        gone = sorted((i for i, row in enumerate(self.rows) if row.path not in fresh), reverse=True)
        for first, last in _runs(gone):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self.rows[first : last + 1]
            del self._text[first : last + 1]
            self.endRemoveRows()
        if gone:
            self._reindex()
        changed = []
        for i, row in enumerate(self.rows):
            new = fresh[row.path]
            if new != row:
                self.rows[i] = new
                self._text[i] = self._display(new)
                changed.append(i)
        for first, last in _runs(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(self.COLUMNS) - 1))
        added = [row for path, row in fresh.items() if path not in self._index]
        if added:
            start = len(self.rows)
            self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
            self.rows += added
            self._text += [self._display(row) for row in added]
            for offset, row in enumerate(added):
                self._index[row.path] = start + offset
            self.endInsertRows()
        if changed or added:
            self._resort_if_needed()
        return {"removed": len(gone), "changed": len(changed), "added": len(added)}

    def _key(self, column: int) -> Callable[[int], tuple[bool, float] | str]:
        if column == 1:
            return lambda i: (self.rows[i].duration is None, self.rows[i].duration or 0.0)
        return lambda i: self._text[i][column].lower()

    def _order(self) -> list[int] | None:
        if self._sort is None:
            return None
        column, order = self._sort
        return sorted(range(len(self.rows)), key=self._key(column), reverse=order == Qt.DescendingOrder)

    def _sort_rows(self) -> None:
        order = self._order()
        if order is not None:
            self.rows = [self.rows[i] for i in order]
            self._text = [self._text[i] for i in order]
            self._reindex()

    def _resort_if_needed(self) -> None:
        order = self._order()
        if order is None or order == list(range(len(order))):
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        self.rows = [self.rows[i] for i in order]
        self._text = [self._text[i] for i in order]
        self._reindex()
        moved = {before: after for after, before in enumerate(order)}
        self.changePersistentIndexList(old, [self.index(moved[i.row()], i.column()) for i in old])
        self.layoutChanged.emit()

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        self._sort = (column, order) if 0 <= column < len(self.COLUMNS) else None
        self._resort_if_needed()

    def haystack(self, row: int) -> str:
        """What the filter box searches: every column and the path, lower case."""
        return " ".join((*self._text[row], self.rows[row].path)).lower()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if role == Qt.DisplayRole:  # the hot path: views ask this for every painted cell
            return self._text[index.row()][index.column()]
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == self.RowRole:
            return row
        if role == Qt.ToolTipRole:
            return row.path + (f"\n{row.reason}" if row.reason else "")
        if role == Qt.ForegroundRole and column == 3:
            return QColor(STATE_COLOURS.get(row.state, "#888"))
        return None

    def flags(self, index: QModelIndex):
        return super().flags(index) | Qt.ItemIsDragEnabled if index.isValid() else Qt.NoItemFlags

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes):
        return file_mime_data(sorted({self.rows[i.row()].path for i in indexes if i.isValid()}))


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Contiguous (first, last) runs of row numbers, in the order given (ascending or descending)."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and abs(i - runs[-1][-1]) == 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [(min(run), max(run)) for run in runs]


class LibraryFilter(QSortFilterProxyModel):
    """Filtering only: sorting is forwarded to the library model (see LibraryModel), and a row is matched
    against one precomputed string instead of four `data()` calls."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._needle = ""

    def set_needle(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        return not self._needle or self._needle in self.sourceModel().haystack(source_row)

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)


class LibraryPanel(QWidget):
    """Folders + scan controls + the track list. Emits requests; the window runs the work."""

    addFolderRequested = Signal()
    scanRequested = Signal()
    pauseRequested = Signal(bool)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LibraryModel(self)
        self.proxy = LibraryFilter(self)
        self.proxy.setSourceModel(self.model)

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
        # Fixed widths: ResizeToContents would measure up to 1,000 rows through Python on every change.
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        for column, width in ((1, 64), (2, 150), (3, 74)):
            header.setSectionResizeMode(column, QHeaderView.Interactive)
            self.table.setColumnWidth(column, width)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.sortByColumn(0, Qt.AscendingOrder)
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
        self.filter.textChanged.connect(self.proxy.set_needle)
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
        """Show a fresh read of the library (only the rows that differ are touched)."""
        self.model.update_rows(rows)
        counts = self.model.counts()
        parts = [
            f"{counts[state]} {state}"
            for state in ("analysed", "new", "failed", "missing")
            if counts.get(state)
        ]
        self.summary.setText(", ".join(parts) if parts else "No tracks yet: add a music folder and scan it.")
