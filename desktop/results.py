"""Ranked suggestions: a table model, a match-curve delegate, and the view whose drags carry file URLs.

A drag from `ResultsView` does not take the model's mime data at once: it asks the window
(`dragRequested(row, whole_file)`), which answers with `exec_drag` immediately when the suggestion's
excerpt is rendered, or later, when the render finishes while the button is still held (Qt starts a drag
synchronously from the mouse move, so the excerpt cannot be waited for there without freezing the GUI).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QPointF,
    QRectF,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QDrag, QFontMetrics, QGuiApplication, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView
from viml.desktop.style import ACCENT, CURVE, format_duration, format_time
from viml.desktop.table_model import (
    ALIGNMENT_ROLE,
    DISPLAY_ROLE,
    DRAG_ENABLED,
    FOREGROUND_ROLE,
    NO_FLAGS,
    RIGHT_ALIGNED,
    TOOLTIP_ROLE,
    RowsTableModel,
)
from viml.desktop.waveform import NOW_PLAYING_ROLE, PICTURE_ROLE, RowPicture, pictures
from viml.desktop.why import Why, why_lines
from viml.engine.music.waveform import Waveform

# Held when a drag starts, it carries the whole file instead of the excerpt: each platform's *copy*
# modifier (Ctrl on Windows and Linux; Option on macOS, which Qt calls Alt). Results are only ever
# copied, so it asks for what the drag does anyway. Alt on Linux is taken by window managers (Alt+drag
# moves the window) and Shift asks for a move, which a drop target would then refuse.
WHOLE_FILE_MODIFIER = Qt.AltModifier if sys.platform == "darwin" else Qt.ControlModifier
WHOLE_FILE_KEY = "Option" if sys.platform == "darwin" else "Ctrl"


@dataclass(frozen=True)
class Suggestion:
    """What the results view shows for one ranked track (converted from the catalog's answer)."""

    path: str
    title: str
    score: float
    offset: float  # best start in the track, seconds
    length: float  # the clip's length: how much music is used from `offset`
    duration: float  # the whole track, seconds
    tags: tuple[str, ...] = ()
    curve: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # score per offset
    curve_step: float = 10.0  # seconds between curve points (one segment)
    rank: int = 0  # 1 = the best match (the "#" column, whatever the table is sorted by)
    artist: str = ""
    bpm: float | None = None  # the file's BPM tag
    measured_bpm: float | None = None  # the tempo the rhythm analysis measured
    key: str = ""  # the file's key tag ("Am", "8A"); "" when it has none (never guessed)
    # What the "Match over the track" cell draws (desktop/waveform.py) and the tooltip says (desktop/why.py)
    clip_length: float | None = None  # the clip's in–out, seconds (None: a prompt alone)
    waveform: Waveform | None = None  # stored at scan time; None for a track scanned without one
    fine_curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [N, 2] (start s, score)
    downbeats: tuple[float, ...] = ()  # measured downbeats within the best part
    sections: tuple[float, ...] = ()  # measured section starts over the whole track
    why: Why | None = None
    picture: RowPicture | None = None  # its cell, prepared where the results were made (waveform.prepare)
    weak_tags: bool = False  # `tags` are the track's strongest, none of the best part's reached the threshold

    @property
    def bpm_text(self) -> str:
        """The file's BPM, else the measured tempo marked "≈", else ""."""
        if self.bpm:
            return f"{self.bpm:g}"
        return f"≈{self.measured_bpm:.0f}" if self.measured_bpm else ""


def file_mime_data(paths: list[str]) -> QMimeData:
    """text/uri-list with file:// URLs (what editors and file managers accept) plus plain-text paths."""
    data = QMimeData()
    absolute = [str(Path(path).resolve()) for path in paths]
    data.setUrls([QUrl.fromLocalFile(path) for path in absolute])
    data.setText("\n".join(absolute))
    return data


class ResultsModel(RowsTableModel):
    """The ranked suggestions; sortable by any text column (the "#" column keeps each one's rank)."""

    # The picture early: a narrow window scrolls the details (BPM, key, length, score, part, tags) first.
    COLUMNS = ("#", "Track", "Artist", "Match over the track", "BPM", "Key", "Length", "Score", "Best part",
               "Tags")  # fmt: skip
    TRACK_COLUMN, TAGS_COLUMN = COLUMNS.index("Track"), COLUMNS.index("Tags")
    CURVE_COLUMN = COLUMNS.index("Match over the track")  # painted by a delegate, no text
    NUMBER_COLUMNS = tuple(map(COLUMNS.index, ("#", "BPM", "Length", "Score")))  # right-aligned
    SuggestionRole = Qt.UserRole + 1

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[Suggestion] = []
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._pictures: dict[int, RowPicture] = {}  # id(suggestion) -> its prepared cell
        self._now_playing: tuple[int, float] | None = None  # (id(suggestion), seconds into the track)

    @classmethod
    def display(cls, item: Suggestion) -> tuple[str | None, ...]:
        """Each column's text, in COLUMNS order (None: the picture column)."""
        text = {
            "#": str(item.rank),
            "Track": item.title,
            "Artist": item.artist,
            "BPM": item.bpm_text,
            "Key": item.key,
            "Length": format_duration(item.duration),
            "Score": f"{item.score:.3f}",
            "Best part": f"{format_time(item.offset)} – {format_time(item.offset + item.length)}",
            "Tags": ", ".join(item.tags),
        }
        return tuple(text.get(name) for name in cls.COLUMNS)

    def set_suggestions(self, suggestions: list[Suggestion]) -> None:
        self.beginResetModel()
        self.rows = [item if item.rank else replace(item, rank=i) for i, item in enumerate(suggestions, 1)]
        self._sort_rows()
        # Cells prepared with the results (waveform.prepare, off the GUI thread), else prepared here.
        prepared = [item.picture for item in self.rows]
        if any(picture is None for picture in prepared):
            prepared = pictures(self.rows)
        self._pictures = {id(item): picture for item, picture in zip(self.rows, prepared, strict=True)}
        self._now_playing = None
        self.endResetModel()

    def set_now_playing(self, row: int | None, music_seconds: float = 0.0) -> None:
        """Mark `music_seconds` into the track of `row` as playing (None: nothing plays); repaints only
        that row's waveform cell (and the one the marker leaves). It follows the track when re-sorted."""

        def row_of(key: int | None) -> int | None:
            return next((r for r, item in enumerate(self.rows) if id(item) == key), None)

        before = row_of(self._now_playing[0]) if self._now_playing else None
        playing = row is not None and 0 <= row < len(self.rows)
        self._now_playing = (id(self.rows[row]), float(music_seconds)) if playing else None
        for changed in {before, row if playing else None} - {None}:
            cell = self.index(changed, self.CURVE_COLUMN)
            self.dataChanged.emit(cell, cell, [NOW_PLAYING_ROLE])

    def picture(self, row: int) -> RowPicture:
        return self._pictures[id(self.rows[row])]

    @classmethod
    def _sort_value(cls, column: int):
        """What a column sorts by: numbers as numbers, text case-insensitively; None: unknown or empty."""
        numbers = {  # column -> the number it shows
            "#": lambda s: s.rank,
            "BPM": lambda s: s.bpm or s.measured_bpm,
            "Length": lambda s: s.duration,
            "Score": lambda s: -s.score,  # ascending = best first, like the ranking
            "Best part": lambda s: s.offset,
        }
        if cls.COLUMNS[column] in numbers:
            number = numbers[cls.COLUMNS[column]]
            return lambda s: number(s) if number(s) is not None and number(s) == number(s) else None
        return lambda s: (ResultsModel.display(s)[column] or "").lower() or None

    def _sort_rows(self) -> None:
        """Sort by the chosen column, ties by rank; unknown or empty values last in either order."""
        if self._sort is None:
            return
        column, order = self._sort
        value = self._sort_value(column)
        known = sorted((item for item in self.rows if value(item) is not None), key=lambda s: s.rank)
        unknown = sorted((item for item in self.rows if value(item) is None), key=lambda s: s.rank)
        known.sort(key=value, reverse=order == Qt.DescendingOrder)  # stable: ties stay by rank
        self.rows = known + unknown

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        if not 0 <= column < len(self.COLUMNS) or column == self.CURVE_COLUMN:
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        before = [id(item) for item in self.rows]
        self._sort = (column, order)
        self._sort_rows()
        after = {id(item): row for row, item in enumerate(self.rows)}
        self.changePersistentIndexList(old, [self.index(after[before[i.row()]], i.column()) for i in old])
        self.layoutChanged.emit()

    def suggestion(self, row: int) -> Suggestion:
        return self.rows[row]

    def data(self, index: QModelIndex, role: int = DISPLAY_ROLE):
        if not index.isValid():
            return None
        item = self.rows[index.row()]
        column = index.column()
        if role == self.SuggestionRole:
            return item
        if role == DISPLAY_ROLE:
            return self.display(item)[column]
        if role == PICTURE_ROLE:
            return self._pictures.get(id(item))
        if role == NOW_PLAYING_ROLE:
            playing = self._now_playing
            return playing[1] if playing is not None and playing[0] == id(item) else None
        if role == TOOLTIP_ROLE:
            return "\n".join(
                [
                    " – ".join(part for part in (item.artist, item.title) if part),
                    item.path,
                    *why_lines(item),
                    f"Drag into your editor: the part, fitted to the clip's length ({WHOLE_FILE_KEY}+drag: "
                    "the whole file). Double-click to audition it with the clip.",
                ]
            )
        if role == FOREGROUND_ROLE and column == self.TAGS_COLUMN and item.weak_tags:
            return QColor("#888888")  # the track's strongest tags, not the part's confident ones
        if role == ALIGNMENT_ROLE and column in self.NUMBER_COLUMNS:
            return RIGHT_ALIGNED
        return None

    def flags(self, index: QModelIndex):
        return super().flags(index) | DRAG_ENABLED if index.isValid() else NO_FLAGS

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        rows = sorted({index.row() for index in indexes if index.isValid()})
        return file_mime_data([self.rows[row].path for row in rows])

    def supportedDragActions(self):
        return Qt.CopyAction


class ResultsView(QTableView):
    """The results table; drags go through `dragRequested` (see the module's docstring)."""

    dragRequested = Signal(int, bool)  # row, whole file
    dragStarted = Signal(object)  # the QMimeData, just before the drag runs

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._press_row = -1
        self._press_modifiers = Qt.NoModifier

    def mousePressEvent(self, event) -> None:
        self._press_row = self.indexAt(event.position().toPoint()).row()
        self._press_modifiers = event.modifiers()
        super().mousePressEvent(event)

    def selectionCommand(self, index: QModelIndex, event: QEvent | None = None):
        # Ctrl (the whole-file modifier) would toggle the pressed row out of the selection.
        if (
            event is not None
            and event.type() == QEvent.MouseButtonPress
            and index.isValid()
            and event.modifiers() & Qt.ControlModifier
        ):
            return QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows
        return super().selectionCommand(index, event)

    def startDrag(self, supported_actions) -> None:
        row = self._press_row if self._press_row >= 0 else self.currentIndex().row()
        if row < 0:
            return
        # The modifier as pressed with the button, or pressed since (before the drag distance).
        modifiers = self._press_modifiers | QGuiApplication.keyboardModifiers()
        self.dragRequested.emit(row, bool(modifiers & WHOLE_FILE_MODIFIER))

    def exec_drag(self, mime: QMimeData, label: str) -> Qt.DropAction:
        """Run a copy drag of `mime` (Qt's nested drag loop) with `label` under the cursor."""
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(drag_pixmap(label, self.devicePixelRatioF()))
        self.dragStarted.emit(mime)
        return drag.exec(Qt.CopyAction, Qt.CopyAction)


def drag_pixmap(label: str, ratio: float = 1.0) -> QPixmap:
    """A small rounded tag with what the drag carries (the excerpt's file name)."""
    from PySide6.QtGui import QFont

    font = QFont()
    font.setPointSizeF(10.0)
    metrics = QFontMetrics(font)
    text = metrics.elidedText(label, Qt.ElideMiddle, 420)
    # Room to spare: the pixmap's painter may measure the font a pixel or two wider than `metrics`.
    width, height = metrics.horizontalAdvance(text) + 28, metrics.height() + 10
    pixmap = QPixmap(int(width * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(Qt.NoPen)
    painter.setBrush(QColor(ACCENT))
    painter.drawRoundedRect(QRectF(0, 0, width, height), 6, 6)
    painter.setPen(QColor("#ffffff"))
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, width, height), Qt.AlignCenter, text)
    painter.end()
    return pixmap


class MatchCurveDelegate(QStyledItemDelegate):
    """Draws the per-offset match scores over the track with the best part highlighted."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        item: Suggestion = index.data(ResultsModel.SuggestionRole)
        if option.state & QStyle.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        if item is None or item.duration <= 0:
            return
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing)
        rect = QRectF(option.rect).adjusted(4, 4, -4, -4)
        # The best part: where the music would sit under the clip.
        start = rect.left() + rect.width() * min(item.offset / item.duration, 1.0)
        end = rect.left() + rect.width() * min((item.offset + item.length) / item.duration, 1.0)
        highlight = QColor(ACCENT)
        highlight.setAlpha(90)
        painter.fillRect(QRectF(start, rect.top(), max(end - start, 2.0), rect.height()), highlight)
        curve = np.asarray(item.curve, np.float64)
        if curve.size:
            low, high = float(curve.min()), float(curve.max())
            span = high - low if high > low else 1.0
            # A step curve: point k is the score of the part starting at k * step, drawn over that step
            # (the last one to the end of the track), so the curve spans the whole track.
            path = QPainterPath(QPointF(rect.left(), rect.bottom()))
            for k, value in enumerate(curve):
                x0 = rect.left() + rect.width() * min(k * item.curve_step / item.duration, 1.0)
                x1 = (
                    rect.right()
                    if k == curve.size - 1
                    else (rect.left() + rect.width() * min((k + 1) * item.curve_step / item.duration, 1.0))
                )
                y = rect.bottom() - rect.height() * (0.15 + 0.7 * (value - low) / span if high > low else 0.5)
                path.lineTo(QPointF(x0, y))
                path.lineTo(QPointF(x1, y))
            path.lineTo(QPointF(rect.right(), rect.bottom()))
            fill = QColor(CURVE)
            fill.setAlpha(60)
            painter.fillPath(path, fill)
            painter.setPen(QPen(QColor(CURVE), 1.8))
            painter.drawPath(path)
        painter.restore()
