"""Library: music folders (add, remove, rescan one), background scanning with pause/cancel, the track list
with each file's state and reason, the library's standing problems, and the guard that keeps the app's own
drags (a suggestion let go over the window) from ever becoming a drop into the library."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from viml.desktop.backend import LibraryRow
from viml.desktop.results import file_mime_data
from viml.desktop.style import format_duration
from viml.desktop.table_model import (
    DISPLAY_ROLE,
    DRAG_ENABLED,
    FOREGROUND_ROLE,
    NO_FLAGS,
    TOOLTIP_ROLE,
    RowsTableModel,
)

if TYPE_CHECKING:
    from collections.abc import Callable

STATE_COLOURS = {"new": "#c9a227", "analysed": "#57b894", "failed": "#d9534f", "missing": "#d9534f"}
PROBLEM_COLOUR = "#d9534f"
# The track list's title keeps TITLE_ROOM pixels; the tags get TAGS_SHARE of the room (at least TAGS_WIDTH)
# and leave the view under TAGS_MIN (see LibraryPanel._fit_columns).
TITLE_ROOM, TAGS_WIDTH, TAGS_SHARE, TAGS_MIN = 180, 150, 0.45, 80
# The state filter: label -> state (None: every row). Rows with a reason show it in the Reason column.
STATE_FILTERS = {"All tracks": None, "Analysed": "analysed", "Not scanned": "new", "Failed": "failed",
                 "Missing": "missing"}  # fmt: skip


class LibraryModel(RowsTableModel):
    """The track list, updated in place: a rescan changes, adds or removes only the rows that differ.

    A model reset over thousands of rows costs the GUI thread hundreds of milliseconds (every view and
    proxy re-reads every row through Python), so `update_rows` touches only what changed. The model
    sorts itself (a Python sort over precomputed keys, ~1 ms for 10,000 rows) instead of letting a
    QSortFilterProxyModel compare rows through thousands of `data()` calls.
    """

    COLUMNS = ("Track", "Length", "Tags", "State", "Reason")  # "Length" as in the results
    LENGTH_COLUMN, TAGS_COLUMN, STATE_COLUMN, REASON_COLUMN = 1, 2, 3, 4
    RowRole = Qt.UserRole + 1

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[LibraryRow] = []
        self._index: dict[str, int] = {}  # path -> row
        self._text: list[tuple[str, ...]] = []  # display strings, computed once per row
        self._sort: tuple[int, Qt.SortOrder] | None = None

    @staticmethod
    def _display(row: LibraryRow) -> tuple[str, ...]:
        return (row.title, format_duration(row.duration), ", ".join(row.tags), row.state, row.reason)

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

    def data(self, index: QModelIndex, role: int = DISPLAY_ROLE):
        if role == DISPLAY_ROLE:  # the hot path: views ask this for every painted cell
            return self._text[index.row()][index.column()]
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == self.RowRole:
            return row
        if role == TOOLTIP_ROLE:
            tags = f"\n{', '.join(row.tags)}" if row.tags else ""  # the Tags column leaves a narrow view
            return row.path + tags + (f"\n{row.reason}" if row.reason else "")
        if role == FOREGROUND_ROLE and column in (3, self.REASON_COLUMN):
            return QColor(STATE_COLOURS.get(row.state, "#888"))
        return None

    def flags(self, index: QModelIndex):
        return super().flags(index) | DRAG_ENABLED if index.isValid() else NO_FLAGS

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
    against one precomputed string instead of a `data()` call per column."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._state: str | None = None

    def set_needle(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_state(self, state: str | None) -> None:
        """Only rows in this state (None: all)."""
        self.beginFilterChange()
        self._state = state
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        model = self.sourceModel()
        if self._state is not None and model.rows[source_row].state != self._state:
            return False
        return not self._needle or self._needle in model.haystack(source_row)

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)


class LibraryPanel(QWidget):
    """Folders + scan controls + problems + the track list. Emits requests; the window runs the work."""

    addFolderRequested = Signal()
    removeFolderRequested = Signal(str)
    rescanFolderRequested = Signal(str)
    scanRequested = Signal()
    pauseRequested = Signal(bool)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LibraryModel(self)
        self.proxy = LibraryFilter(self)
        self.proxy.setSourceModel(self.model)

        self.folder_list = QListWidget(self)
        self.folder_list.setSelectionMode(QAbstractItemView.SingleSelection)
        self.folder_list.setTextElideMode(Qt.ElideMiddle)  # a long path keeps its start and its name
        self.folder_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # elided, whole in the tooltip
        self.folder_list.setUniformItemSizes(True)
        self.folder_list.setSizeAdjustPolicy(QListWidget.AdjustIgnored)
        self.folders = QLabel(self)  # shown instead of the list while there are no folders
        self.folders.setObjectName("hint")
        self.folders.setWordWrap(True)
        add = QPushButton("Add folder…", self)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setToolTip(
            "Remove the selected folder from the library: its tracks leave the list and the suggestions "
            "(their analysis is kept, so adding the folder again is quick)"
        )
        self.rescan_button = QPushButton("Rescan", self)
        self.rescan_button.setToolTip(
            "Scan the selected folder again: new, changed and removed files, and the files that failed"
        )
        self.scan_button = QPushButton("Scan all", self)
        self.pause_button = QPushButton("Pause", self, checkable=True)
        self.cancel_button = QPushButton("Cancel", self)
        for text, button in (("Rescan", self.rescan_button), ("Remove", self.remove_button)):
            action = QAction(text, self.folder_list)
            action.triggered.connect(button.click)
            self.folder_list.addAction(action)
        self.folder_list.setContextMenuPolicy(Qt.ActionsContextMenu)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        # Standing problems (a scan that could not run, no bundle to rank with): unlike the status bar,
        # which the next message overwrites, this line stays until the problem is solved.
        self.problems = QLabel(self)
        self.problems.setObjectName("libraryProblems")
        self.problems.setStyleSheet(f"color: {PROBLEM_COLOUR};")
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextSelectableByMouse)  # commands to copy
        self.problems.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)  # never widens the window
        self.problems.hide()
        self.filter = QLineEdit(self, placeholderText="Filter tracks…", clearButtonEnabled=True)
        self.state_filter = QComboBox(self)
        self.state_filter.addItems(list(STATE_FILTERS))
        self.state_filter.setToolTip("Show only tracks in one state; failed and unscanned files say why")
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
        # Widths from the font, not from the rows: ResizeToContents would measure up to 1,000 rows through
        # Python on every change. The tags take what the title leaves (`_fit_columns`).
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        longest = {LibraryModel.LENGTH_COLUMN: "00:00", LibraryModel.STATE_COLUMN: "analysed"}
        for column in range(1, len(LibraryModel.COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.Interactive)
            text = self.fontMetrics().horizontalAdvance(longest.get(column, "")) + 16
            self.table.setColumnWidth(column, max(header.sectionSizeHint(column), text))
        self.table.setColumnWidth(LibraryModel.REASON_COLUMN, 220)
        self.table.viewport().installEventFilter(self)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.sortByColumn(0, Qt.AscendingOrder)
        self.summary = QLabel(self)
        self.summary.setObjectName("hint")
        self.summary.setToolTip("Click a count to show only those tracks")

        folder_buttons = QHBoxLayout()
        for button in (add, self.remove_button, self.rescan_button):
            folder_buttons.addWidget(button)
        folder_buttons.addStretch(1)
        scan_buttons = QHBoxLayout()
        for button in (self.scan_button, self.pause_button, self.cancel_button):
            scan_buttons.addWidget(button)
        scan_buttons.addWidget(self.progress, 1)
        filters = QHBoxLayout()
        filters.addWidget(self.filter, 1)
        filters.addWidget(self.state_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Library</b>", self))
        layout.addWidget(self.folders)
        layout.addWidget(self.folder_list)
        layout.addLayout(folder_buttons)
        layout.addLayout(scan_buttons)
        layout.addWidget(self.problems)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)

        add.clicked.connect(self.addFolderRequested)
        self.remove_button.clicked.connect(lambda: self._for_selected(self.removeFolderRequested))
        self.rescan_button.clicked.connect(lambda: self._for_selected(self.rescanFolderRequested))
        self.folder_list.itemSelectionChanged.connect(self._folder_selected)
        self.scan_button.clicked.connect(self.scanRequested)
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.filter.textChanged.connect(self.proxy.set_needle)
        self.state_filter.currentTextChanged.connect(self._state_chosen)
        self.summary.linkActivated.connect(self.show_state)
        self._problems: dict[str, str] = {}
        self._notes: dict[str, str] = {}  # folder -> its last scan's summary
        self.set_scanning(False)
        self.set_folders([])
        self._state_chosen(self.state_filter.currentText())

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pauseRequested.emit(paused)

    # -- folders ------------------------------------------------------------------------------------
    def set_folders(self, folders: list[str]) -> None:
        selected = self.selected_folder()
        self.folder_list.clear()
        for folder in folders:
            item = QListWidgetItem(folder, self.folder_list)
            item.setToolTip(f"{folder}\n{self._notes[folder]}" if folder in self._notes else folder)
            if folder == selected:
                item.setSelected(True)
        if folders and self.selected_folder() is None:
            self.folder_list.item(0).setSelected(True)
        # As tall as its folders, up to four (then it scrolls): the track list keeps the room.
        shown = min(max(len(folders), 1), 4)
        row = self.folder_list.sizeHintForRow(0) if folders else self.fontMetrics().height() + 4
        self.folder_list.setFixedHeight(shown * row + 2 * self.folder_list.frameWidth() + 2)
        self.folders.setText("Music folders: none yet — add one")
        self.folders.setVisible(not folders)
        self.folder_list.setVisible(bool(folders))
        self.scan_button.setEnabled(bool(folders))
        self._folder_selected()

    def set_folder_note(self, folder: str, note: str) -> None:
        """A line under the folder's path in its tooltip (its last scan's summary)."""
        self._notes[folder] = note
        for i in range(self.folder_list.count()):
            item = self.folder_list.item(i)
            if item.text() == folder:
                item.setToolTip(f"{folder}\n{note}")

    def folder_names(self) -> list[str]:
        return [self.folder_list.item(i).text() for i in range(self.folder_list.count())]

    def selected_folder(self) -> str | None:
        items = self.folder_list.selectedItems()
        return items[0].text() if items else None

    def select_folder(self, folder: str) -> None:
        for i in range(self.folder_list.count()):
            item = self.folder_list.item(i)
            item.setSelected(item.text() == folder)

    def _for_selected(self, signal) -> None:
        folder = self.selected_folder()
        if folder is not None:
            signal.emit(folder)

    def _folder_selected(self) -> None:
        chosen = self.selected_folder() is not None
        self.remove_button.setEnabled(chosen)
        self.rescan_button.setEnabled(chosen)

    # -- scanning -----------------------------------------------------------------------------------
    def set_scanning(self, scanning: bool) -> None:
        self.pause_button.setEnabled(scanning)
        self.cancel_button.setEnabled(scanning)
        self.pause_button.setChecked(False)
        self.progress.setVisible(scanning)

    def set_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(min(done, total))
        self.progress.setFormat(f"{done} / {total} files")

    # -- problems -----------------------------------------------------------------------------------
    def set_problem(self, key: str, message: str | None) -> None:
        """Show (or with None, clear) one standing problem; each key has at most one line."""
        if message:
            self._problems[key] = message
        else:
            self._problems.pop(key, None)
        text = "\n".join(f"⚠ {line}" for line in self._problems.values())
        self.problems.setText(text)
        self.problems.setToolTip(text)
        self.problems.setVisible(bool(self._problems))

    def problem_lines(self) -> list[str]:
        return list(self._problems.values())

    # -- the track list -----------------------------------------------------------------------------
    def show_state(self, state: str) -> None:
        """Show only rows in `state` ("" or "all": every row), as the state box would."""
        label = next((label for label, value in STATE_FILTERS.items() if value == (state or None)), None)
        self.state_filter.setCurrentText(label or "All tracks")

    def _state_chosen(self, label: str) -> None:
        state = STATE_FILTERS.get(label)
        self.proxy.set_state(state)
        # Failed, unscanned and missing files have no tags or duration worth a column: their reason instead,
        # which then takes the room the track's name takes otherwise.
        problem = state in ("new", "failed", "missing")
        self.table.setColumnHidden(1, problem)
        self.table.setColumnHidden(2, problem)
        self.table.setColumnHidden(3, state is not None)  # one state shown: the filter says which
        self.table.setColumnHidden(LibraryModel.REASON_COLUMN, not problem)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Interactive if problem else QHeaderView.Stretch)
        header.setSectionResizeMode(
            LibraryModel.REASON_COLUMN, QHeaderView.Stretch if problem else QHeaderView.Interactive
        )
        if problem:
            self.table.setColumnWidth(0, max(self.table.viewport().width() // 3, 80))
        self._fit_columns()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Resize and watched is self.table.viewport():
            self._fit_columns()
        return False

    def _fit_columns(self) -> None:
        """The title keeps TITLE_ROOM; the tags get TAGS_SHARE of the room (at least TAGS_WIDTH, when the
        title keeps its room), and leave the view when fewer than TAGS_MIN pixels are left (a narrow
        window: the row's tooltip still lists them)."""
        if self.table.isColumnHidden(LibraryModel.REASON_COLUMN) is False:
            return  # one problem state shown: its columns are set in _state_chosen
        header = self.table.horizontalHeader()
        fixed = sum(header.sectionSize(c) for c in (LibraryModel.LENGTH_COLUMN, LibraryModel.STATE_COLUMN)
                    if not self.table.isColumnHidden(c))  # fmt: skip
        room = self.table.viewport().width() - fixed
        tags = min(room - TITLE_ROOM, max(TAGS_WIDTH, int(room * TAGS_SHARE)))
        self.table.setColumnHidden(LibraryModel.TAGS_COLUMN, tags < TAGS_MIN)
        if tags >= TAGS_MIN:
            self.table.setColumnWidth(LibraryModel.TAGS_COLUMN, tags)

    def set_rows(self, rows: list[LibraryRow]) -> None:
        """Show a fresh read of the library (only the rows that differ are touched)."""
        self.model.update_rows(rows)
        counts = self.model.counts()
        parts = []
        for state, word in (("analysed", "analysed"), ("new", "not scanned"), ("failed", "failed"),
                            ("missing", "missing")):  # fmt: skip
            if counts.get(state):
                parts.append(f'<a href="{state}">{counts[state]} {word}</a>')
        self.summary.setText(", ".join(parts) if parts else "No tracks yet: add a music folder and scan it.")


def scan_summary_text(folder: str, summary: dict) -> str:
    """One line for a finished scan that accounts for every file it saw (`viml scan --json`'s counts).

    Files whose audio was already analysed (a copy, a moved file, or one from another folder) are
    *linked*, not analysed; a line of analysed + unchanged + failed left them out, so a scan that added
    2 such tracks read "0 analysed, 0 unchanged, 3 failed"."""
    analysed, reanalysed = summary.get("analysed", 0), summary.get("reanalysed", 0)
    counts = [
        ("added", analysed - reanalysed + summary.get("linked", 0)),
        ("re-analysed", reanalysed),
        ("unchanged", summary.get("unchanged", 0) + summary.get("touched", 0)),
        ("removed", summary.get("removed", 0)),
        ("failed", sum(summary.get("failed", {}).values())),
        ("still failing", summary.get("still_failing", 0)),
    ]
    parts = [f"{count} {word}" for word, count in counts if count]
    return f"Scanned {folder}: " + (", ".join(parts) if parts else "no audio files")


class OwnDragGuard(QObject):
    """Refuses every drag that started in this app (a suggestion or a library track) over `window`,
    wherever it is let go: no child widget accepts it (a line edit would paste its path), and the window
    never takes it for music to add to the library.

    It filters the drag events of the window's QWindow, which Qt sends them to before it picks the
    widget under the cursor, so widgets added later are covered too. `QDropEvent.source()` is set only
    for drags of this process.
    """

    DRAG_EVENTS = (QEvent.DragEnter, QEvent.DragMove, QEvent.Drop)

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.refused = 0  # drag events refused so far (tests and logs)
        self._handle = None
        window.installEventFilter(self)  # to follow the window's QWindow as it is created or replaced
        self._follow()

    def _follow(self) -> None:
        handle = self.window.windowHandle()
        if handle is not None and handle is not self._handle:
            if self._handle is not None:
                self._handle.removeEventFilter(self)
            handle.installEventFilter(self)
            self._handle = handle

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.window:
            if kind in (QEvent.Show, QEvent.WinIdChange):
                self._follow()
            return False
        if kind in self.DRAG_EVENTS and event.source() is not None:
            event.setDropAction(Qt.IgnoreAction)
            event.ignore()
            self.refused += 1
            return True
        return False
