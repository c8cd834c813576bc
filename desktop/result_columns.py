"""How the results table sizes its columns: text columns to their content, the track title readable.

The title stretches over the room the other columns leave; when a narrow window leaves it less than its
titles need (at most TITLE_WIDTH), it keeps that width instead and the table scrolls sideways, so the
columns after the picture (BPM, key, length, score, part, tags) leave the view first and a title never
collapses to "…".
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QHeaderView, QTableView

TITLE_WIDTH = 240  # pixels the title keeps at most when the table is too narrow
TITLE_MIN = 120  # ... and at least
TAGS_WIDTH = 150


class ResultColumns(QObject):
    """Sizes `view`'s columns (ResultsModel's) and keeps the title readable as the view resizes."""

    def __init__(self, view: QTableView, track: int, tags: int, picture: int, picture_width: int) -> None:
        super().__init__(view)
        self.view, self.track = view, track
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(tags, QHeaderView.Interactive)
        header.setSectionResizeMode(picture, QHeaderView.Interactive)  # widen to zoom the waveform
        view.setColumnWidth(tags, TAGS_WIDTH)
        view.setColumnWidth(picture, picture_width)
        header.setSectionResizeMode(track, QHeaderView.Stretch)
        view.viewport().installEventFilter(self)
        model = view.model()
        for signal in (model.modelReset, model.layoutChanged, header.sectionResized):
            signal.connect(self._later)
        self._pending = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Resize:
            self._later()
        return False

    def _later(self, *_) -> None:
        if not self._pending:  # after Qt has sized the content columns
            self._pending = True
            QTimer.singleShot(0, self.fit)

    def title_width(self) -> int:
        """What the titles need, between TITLE_MIN and TITLE_WIDTH."""
        return max(TITLE_MIN, min(TITLE_WIDTH, self.view.sizeHintForColumn(self.track)))

    def fit(self) -> None:
        self._pending = False
        header = self.view.horizontalHeader()
        others = sum(
            header.sectionSize(c)
            for c in range(header.count())
            if c != self.track and not header.isSectionHidden(c)
        )
        needed = self.title_width()
        if self.view.viewport().width() - others >= needed:
            if header.sectionResizeMode(self.track) != QHeaderView.Stretch:
                header.setSectionResizeMode(self.track, QHeaderView.Stretch)
        elif (
            header.sectionResizeMode(self.track) != QHeaderView.Interactive
            or header.sectionSize(self.track) != needed
        ):
            header.setSectionResizeMode(self.track, QHeaderView.Interactive)
            header.resizeSection(self.track, needed)
