"""The part every results/library table shares: a list of rows shown under fixed column titles."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

# Roles, flags and alignments read once for the models' data(), which runs for every cell a view lays out
# or paints: PySide6 resolves the short spellings (Qt.DisplayRole) through a slow compatibility lookup,
# ~12 µs each against 0.7 µs for Qt.ItemDataRole.DisplayRole, so one list of 20 results cost ~90 ms of
# GUI thread in 1,460 data() calls (a stall while typing: bench/ui_latency.py).
DISPLAY_ROLE = Qt.ItemDataRole.DisplayRole
TOOLTIP_ROLE = Qt.ItemDataRole.ToolTipRole
FOREGROUND_ROLE = Qt.ItemDataRole.ForegroundRole
ALIGNMENT_ROLE = Qt.ItemDataRole.TextAlignmentRole
HORIZONTAL = Qt.Orientation.Horizontal
DRAG_ENABLED = Qt.ItemFlag.ItemIsDragEnabled
NO_FLAGS = Qt.ItemFlag.NoItemFlags
RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class RowsTableModel(QAbstractTableModel):
    """Subclasses set COLUMNS, keep their rows in `self.rows` and answer `data`."""

    COLUMNS: tuple[str, ...] = ()
    rows: list

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation, role: int = DISPLAY_ROLE):
        if orientation == HORIZONTAL and role == DISPLAY_ROLE:
            return self.COLUMNS[section]
        return None
