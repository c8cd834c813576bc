"""How the results table sizes its columns: text columns to their content, the title readable, the picture
seen whole.

Columns up to the picture ("#", title, artist, the match over the track) are what a result is read by,
so they share the view first: the artist keeps at most ARTIST_WIDTH (elided, whole in the cell's
tooltip), the picture narrows from its width down to PICTURE_MIN before the title gives up any of what
its titles need (at most TITLE_WIDTH). The title stretches over the room the other columns leave; when a
narrow window leaves it less, it keeps its width instead and the table scrolls sideways, so the columns
after the picture (BPM, key, length, score, part, tags) leave the view first and a title never
collapses to "…". A picture column the user widened or narrowed keeps that width.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QHeaderView, QTableView

TITLE_WIDTH = 240  # pixels the title keeps at most when the table is too narrow
TITLE_MIN = 120  # ... and at least
TAGS_WIDTH = 150
ARTIST_WIDTH = 160  # at most, when the names are longer
PICTURE_MIN = 200  # the picture's narrowest before the title gives way


class ResultColumns(QObject):
    """Sizes `view`'s columns (ResultsModel's) and keeps the title and picture readable as it resizes."""

    def __init__(
        self,
        view: QTableView,
        track: int,
        tags: int,
        picture: int,
        picture_width: int,
        artist: int | None = None,
    ) -> None:
        super().__init__(view)
        self.view, self.track, self.picture, self.artist = view, track, picture, artist
        self.picture_width = picture_width
        self.picture_chosen = False  # the user resized the picture: it keeps their width
        self._sizing = False
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(tags, QHeaderView.Interactive)
        header.setSectionResizeMode(picture, QHeaderView.Interactive)  # widen to zoom the waveform
        if artist is not None:
            header.setSectionResizeMode(artist, QHeaderView.Interactive)
        view.setColumnWidth(tags, TAGS_WIDTH)
        self._resize(picture, picture_width)
        header.setSectionResizeMode(track, QHeaderView.Stretch)
        view.viewport().installEventFilter(self)
        model = view.model()
        for signal in (model.modelReset, model.layoutChanged):
            signal.connect(self._later)
        header.sectionResized.connect(self._resized)
        self._pending = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Resize:
            self._later()
        return False

    def _resized(self, column: int, _old: int, _new: int) -> None:
        if column == self.picture and not self._sizing:
            self.picture_chosen = True  # a drag of its edge, not one of ours
        self._later()

    def _later(self, *_) -> None:
        if not self._pending:  # after Qt has sized the content columns
            self._pending = True
            QTimer.singleShot(0, self.fit)

    def _resize(self, column: int, width: int) -> None:
        header = self.view.horizontalHeader()
        if header.sectionSize(column) != width:
            self._sizing = True
            try:
                header.resizeSection(column, width)
            finally:
                self._sizing = False

    def title_width(self) -> int:
        """What the titles need, between TITLE_MIN and TITLE_WIDTH."""
        return max(TITLE_MIN, min(TITLE_WIDTH, self.view.sizeHintForColumn(self.track)))

    def artist_width(self) -> int:
        """What the artists (and the header) need, at most ARTIST_WIDTH."""
        header = self.view.horizontalHeader()
        needed = max(self.view.sizeHintForColumn(self.artist), header.sectionSizeHint(self.artist))
        return min(needed, max(ARTIST_WIDTH, header.sectionSizeHint(self.artist)))

    def fit(self) -> None:
        self._pending = False
        header = self.view.horizontalHeader()
        width = self.view.viewport().width()
        shown = [c for c in range(header.count()) if not header.isSectionHidden(c)]
        if self.artist is not None and self.artist in shown:
            self._resize(self.artist, self.artist_width())
        needed = self.title_width()
        before = sum(  # the columns left of the picture, the title aside
            header.sectionSize(c)
            for c in shown
            if c not in (self.track, self.picture)
            and header.visualIndex(c) < header.visualIndex(self.picture)
        )
        if not self.picture_chosen:
            room = width - before - needed
            self._resize(self.picture, max(PICTURE_MIN, min(self.picture_width, room)))
        others = sum(header.sectionSize(c) for c in shown if c != self.track)
        if width - others >= needed:
            if header.sectionResizeMode(self.track) != QHeaderView.Stretch:
                header.setSectionResizeMode(self.track, QHeaderView.Stretch)
            return
        # Too narrow for every column: the title keeps what it needs, or what is left before the picture.
        title = max(TITLE_MIN, min(needed, width - before - header.sectionSize(self.picture)))
        if (
            header.sectionResizeMode(self.track) != QHeaderView.Interactive
            or header.sectionSize(self.track) != title
        ):
            header.setSectionResizeMode(self.track, QHeaderView.Interactive)
            header.resizeSection(self.track, title)
