"""The results' "Match over the track" cell: a result you can read at a glance.

One cell per suggestion, the whole track from left to right:

- the waveform (stored at scan time, catalog `waveforms`; never decoded here): peak outline, RMS body;
  the best part in the accent colour on a tinted band, the rest grey;
- the match curve: the finer windows' scores (downbeats, or every second; search/offsets.py) where the
  search refined the track, else one step per segment;
- section starts as ticks along the top, the part's downbeats as ticks along the bottom;
- a strip under it: the music's chosen part, and the clip's in–out laid from the part's start as a
  bracket, red where the clip runs past the music;
- a now-playing marker while the track is auditioned (`ResultsModel.set_now_playing`).

Everything but the marker is drawn once per cell size into an image (`RowPicture`), on the query's
worker thread where the results are made (`prepare`, at the size the cell was last painted); a paint
only copies it and draws the marker, so fifty rows paint in well under a frame (bench/ui_latency.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QLineF, QModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem
from viml.desktop.style import ACCENT, CURVE

if TYPE_CHECKING:
    from viml.desktop.results import Suggestion

PICTURE_ROLE = Qt.UserRole + 2  # the row's RowPicture
NOW_PLAYING_ROLE = Qt.UserRole + 3  # seconds into the track being auditioned, or None

ROW_HEIGHT = 40  # pixels: room for a readable waveform and the strip, and for rows enough at 1024 x 640
CELL_WIDTH = 300

MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 4.0, 3.0, 2.0
STRIP = 6.0  # the in–out strip's height, under the waveform
GAP = 2.0

PEAK, BODY = "#c2c8cf", "#939ca6"  # outside the best part: light, so the curve stands out
PART_PEAK, PART_BODY = "#9fc7f0", "#5b9ade"
SECTION, DOWNBEAT = "#4b535c", "#235f9e"
CLIP, OVERHANG, PLAYHEAD = "#2b2f33", "#d9534f", "#e8412c"


def _rgb(name: str) -> np.ndarray:
    color = QColor(name)
    return np.array([color.blue(), color.green(), color.red()], np.float32)  # ARGB32's byte order


class Layout:
    """Where things go in a cell of `width` x `height` (logical pixels) for a track of `duration`."""

    def __init__(self, width: float, height: float, duration: float) -> None:
        self.left, self.width = MARGIN_X, max(width - 2 * MARGIN_X, 1.0)
        self.wave_top = MARGIN_TOP
        self.strip_top = height - MARGIN_BOTTOM - STRIP
        self.wave_height = max(self.strip_top - GAP - self.wave_top, 4.0)
        self.duration = duration

    def x(self, seconds: float) -> float:
        return self.left + self.width * min(max(seconds / self.duration, 0.0), 1.0)

    @property
    def wave(self) -> QRectF:
        return QRectF(self.left, self.wave_top, self.width, self.wave_height)


def curve_points(item: Suggestion, duration: float) -> np.ndarray:
    """[N, 2] (seconds, score) of the match curve: the finer windows where the search refined the
    track, else one step per segment (point k holds from k * step to the next, the last to the end)."""
    fine = np.asarray(item.fine_curve, np.float64).reshape(-1, 2)
    if len(fine) >= 2:
        return fine[np.argsort(fine[:, 0])]
    values = np.asarray(item.curve, np.float64)
    if not len(values):
        return np.zeros((0, 2))
    edges = np.minimum(np.arange(len(values) + 1) * item.curve_step, duration)
    edges[-1] = duration
    return np.column_stack([np.repeat(edges, 2)[1:-1], np.repeat(values, 2)])


def curve_range(curves: list[np.ndarray]) -> tuple[float, float]:
    """(lowest, highest) score over curves [N, 2]: the scale every row of one result list shares."""
    scores = [curve[:, 1] for curve in curves if len(curve)]
    if not scores:
        return 0.0, 1.0
    joined = np.concatenate(scores)
    return float(joined.min()), float(joined.max())


# The results cell as last painted (width, height, device pixel ratio): a new result list is drawn at this
# size where it is prepared, on the query's worker thread, so neither showing it nor painting it draws.
# Before any paint: the column's and row's own size less the grid line (what the first list gets).
painted_size: tuple[int, int, float] | None = (CELL_WIDTH - 1, ROW_HEIGHT - 1, 1.0)


def pictures(items: list[Suggestion]) -> list[RowPicture]:
    """Every row's prepared cell, the match curves on one scale."""
    durations = [
        item.duration if item.duration > 0 else max(item.offset + item.length, 1.0) for item in items
    ]
    scale = curve_range([curve_points(item, d) for item, d in zip(items, durations, strict=True)])
    return [RowPicture(item, scale) for item in items]


def prepare(items: list[Suggestion]) -> list[Suggestion]:
    """The rows with their cells prepared and drawn at the size last painted (QImage and QPainter work
    on any thread: call this where the results are made, off the GUI thread)."""
    size = painted_size
    prepared = pictures(items)
    if size is not None:
        for picture in prepared:
            picture.image(*size)
    return [replace(item, picture=picture) for item, picture in zip(items, prepared, strict=True)]


class RowPicture:
    """One result's cell, prepared when the results arrive and drawn once per cell size."""

    def __init__(self, item: Suggestion, scale: tuple[float, float] | None = None) -> None:
        self.item = item
        self.duration = item.duration if item.duration > 0 else max(item.offset + item.length, 1.0)
        points = curve_points(item, self.duration)
        low, high = scale if scale is not None else curve_range([points])
        # [N, 2] (seconds, 0..1 height): one scale for the whole result list, so a curve's height says
        # how well that part matches against the other results (a flat line: every part alike)
        heights = (points[:, 1] - low) / (high - low) if high > low else np.full(len(points), 0.5)
        self.curve = np.column_stack([points[:, 0], np.clip(heights, 0.0, 1.0)])
        self._drawn: tuple[tuple[int, int, float], QImage] | None = None  # (size, image), replaced whole
        self.renders = 0  # how often the cell was drawn (tests: a repaint only copies)

    def image(self, width: int, height: int, ratio: float = 1.0) -> QImage:
        """The cell without the marker (transparent where nothing is drawn), kept for this size."""
        key = (int(width), int(height), float(ratio))
        drawn = self._drawn
        if drawn is None or drawn[0] != key:
            drawn = self._drawn = (key, self.render(*key))
        return drawn[1]

    def render(self, width: int, height: int, ratio: float = 1.0) -> QImage:
        self.renders += 1
        image = QImage(
            max(int(width * ratio), 1), max(int(height * ratio), 1), QImage.Format_ARGB32_Premultiplied
        )
        image.setDevicePixelRatio(ratio)
        image.fill(Qt.transparent)
        item, layout = self.item, Layout(width, height, self.duration)
        part_start, part_end = (
            layout.x(item.offset),
            max(layout.x(item.offset + item.length), layout.x(item.offset) + 2),
        )
        painter = QPainter(image)
        band = QColor(ACCENT)
        band.setAlpha(40)
        painter.fillRect(QRectF(part_start, 0, part_end - part_start, height), band)
        if item.waveform is not None and len(item.waveform):
            painter.drawImage(layout.wave, self._waveform_image(layout, ratio, part_start, part_end))
        painter.setRenderHint(QPainter.Antialiasing)
        self._marks(painter, layout)
        self._draw_curve(painter, layout)
        self._strip(painter, layout)
        painter.end()
        return image

    def _waveform_image(self, layout: Layout, ratio: float, part_start: float, part_end: float) -> QImage:
        """Peak and RMS per pixel column, rasterised in numpy (no path with thousands of points)."""
        assert self.item.waveform is not None
        columns = max(int(round(layout.width * ratio)), 1)
        rows = max(int(round(layout.wave_height * ratio)), 1)
        peak, body = self.item.waveform.binned(columns, 0.0, self.duration)
        half = rows / 2.0
        distance = np.abs(np.arange(rows, dtype=np.float32) + 0.5 - half)[:, None]  # [rows, 1]
        # Coverage with a one-pixel soft edge: antialiased outlines without a painter.
        cover_peak = np.clip(np.maximum(peak * half, 0.5)[None, :] - distance + 0.5, 0.0, 1.0)
        cover_body = np.clip(body[None, :] * half - distance + 0.5, 0.0, 1.0)
        x = (np.arange(columns) + 0.5) / ratio + layout.left
        inside = ((x >= part_start) & (x <= part_end))[:, None]  # [columns, 1]
        peak_rgb = np.where(inside, _rgb(PART_PEAK), _rgb(PEAK))  # [columns, 3]
        body_rgb = np.where(inside, _rgb(PART_BODY), _rgb(BODY))
        rim = np.clip(cover_peak - cover_body, 0.0, 1.0)
        rgb = body_rgb[None] * cover_body[..., None] + peak_rgb[None] * rim[..., None]
        pixels = np.empty((rows, columns, 4), np.uint8)
        pixels[..., :3] = np.clip(rgb, 0, 255)  # premultiplied: colour times coverage
        pixels[..., 3] = np.clip(cover_peak * 255, 0, 255)
        image = QImage(pixels.data, columns, rows, columns * 4, QImage.Format_ARGB32_Premultiplied)
        return image.copy()  # own the pixels: `pixels` goes away with this frame

    # Each kind of mark goes to the painter in one call (drawLines, drawPolyline): Qt calls that return
    # nothing are the costly ones from Python, and PySide6 6.12.0 on Python 3.11 even loses a reference
    # to None on each of them (see docs/sections/desktop.md), so a cell makes a handful, not one a point.
    def _marks(self, painter: QPainter, layout: Layout) -> None:
        top, bottom = layout.wave_top, layout.wave_top + layout.wave_height
        xs = [layout.x(t) for t in self.item.sections if 0 < t < self.duration]
        if xs:
            painter.setPen(QPen(QColor(SECTION), 1.5))
            painter.drawLines([QLineF(x, top, x, top + 5) for x in xs])
        xs = [layout.x(t) for t in self.item.downbeats]
        if xs:
            painter.setPen(QPen(QColor(DOWNBEAT), 1.0))
            painter.drawLines([QLineF(x, bottom - 4, x, bottom) for x in xs])

    def _draw_curve(self, painter: QPainter, layout: Layout) -> None:
        if not len(self.curve):
            return
        top, height = layout.wave_top, layout.wave_height
        xs = layout.left + layout.width * np.clip(self.curve[:, 0] / self.duration, 0.0, 1.0)
        ys = top + height * (0.9 - 0.8 * self.curve[:, 1])
        # Two one-pixel passes, 0.8 px apart, for a line that reads like 1.8 px: a pen wider than one pixel
        # takes Qt's raster engine 100-200 times longer (7 ms for a 120-point curve).
        halo = QColor("#ffffff")
        halo.setAlpha(150)
        for color, shifts in (
            (halo, (-1.0, 1.8)),
            (QColor(CURVE), (0.0, 0.8)),
        ):  # a light edge, then the line
            painter.setPen(QPen(color, 1.0))
            for shift in shifts:
                points = zip(xs.tolist(), (ys + shift).tolist(), strict=True)
                painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in points]))

    def _strip(self, painter: QPainter, layout: Layout) -> None:
        item = self.item
        top, middle = layout.strip_top, layout.strip_top + STRIP / 2
        track = QColor(PEAK)
        track.setAlpha(140)
        painter.fillRect(QRectF(layout.left, middle - 1, layout.width, 2), track)
        start = layout.x(item.offset)
        painter.fillRect(
            QRectF(start, top + 1, max(layout.x(item.offset + item.length) - start, 2.0), STRIP - 2),
            QColor(ACCENT),
        )
        if item.clip_length is None:
            return
        # The clip's in–out laid from where the music starts; a clip longer than the music left after
        # the part has its bracket in red and runs on, red, past the part (the track's end stops it).
        clip_end = item.offset + item.clip_length
        covered = min(clip_end, item.offset + item.length)
        painter.setPen(QPen(QColor(OVERHANG if clip_end > covered + 0.05 else CLIP), 1.0))
        right = max(layout.x(covered), start + 2)
        bracket = [
            QPointF(start, top),
            QPointF(start, top + STRIP),
            QPointF(right, top + STRIP),
            QPointF(right, top),
        ]
        painter.drawPolyline(QPolygonF(bracket))
        if clip_end > covered + 0.05:
            over = min(
                layout.width * (clip_end - covered) / self.duration, layout.left + layout.width - right
            )
            painter.fillRect(QRectF(right, top + 1, max(over, 3.0), STRIP - 2), QColor(OVERHANG))


def paint_marker(painter: QPainter, rect: QRectF, duration: float, seconds: float) -> None:
    """The now-playing line (and a small head) at `seconds` into the track."""
    layout = Layout(rect.width(), rect.height(), duration)
    x = rect.left() + layout.x(seconds)
    painter.save()
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor(PLAYHEAD), 2.0))
    painter.drawLine(QPointF(x, rect.top() + 1), QPointF(x, rect.bottom() - 1))
    painter.setPen(Qt.NoPen)
    painter.setBrush(QColor(PLAYHEAD))
    painter.drawPolygon([QPointF(x - 4, rect.top()), QPointF(x + 4, rect.top()), QPointF(x, rect.top() + 5)])
    painter.restore()


class WaveformDelegate(QStyledItemDelegate):
    """Paints the cell from the row's RowPicture: a copy of its image and the now-playing marker."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if option.state & QStyle.State_Selected:
            # A lighter selection than the view's (drawn before this) so the best part stays readable.
            selected = QColor(option.palette.highlight().color())
            selected.setAlpha(90)
            painter.fillRect(option.rect, option.palette.base())
            painter.fillRect(option.rect, selected)
        picture: RowPicture | None = index.data(PICTURE_ROLE)
        if picture is None:
            return
        rect = option.rect
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        global painted_size
        painted_size = (rect.width(), rect.height(), ratio)
        painter.drawImage(rect.topLeft(), picture.image(rect.width(), rect.height(), ratio))
        seconds = index.data(NOW_PLAYING_ROLE)
        if seconds is not None:
            paint_marker(painter, QRectF(rect), picture.duration, seconds)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(CELL_WIDTH, ROW_HEIGHT)
