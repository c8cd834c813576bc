"""Small shared look-and-feel helpers for the desktop widgets."""

from __future__ import annotations

import math

ACCENT = "#4a90d9"
CURVE = "#57b894"

STYLESHEET = """
QLabel#hint { color: #888; }
QLabel#clipTimes { font-family: monospace; }
QLabel#empty { color: #888; padding: 12px; }
"""


def format_time(seconds: float) -> str:
    """m:ss.s for positions inside a clip or track."""
    if seconds != seconds or seconds < 0:  # NaN or negative
        return "--:--"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def format_timecode(seconds: float, fps: float | None) -> str:
    """HH:MM:SS:FF at a clip's frame rate: the frame under `seconds`, counted at the rate's whole-number
    base as non-drop timecode (29.97 counts 30 a second, as editors' NDF does); m:ss.s without a rate."""
    if not fps or fps <= 0 or seconds != seconds or seconds < 0:
        return format_time(seconds)
    base = max(1, round(fps))
    frames = int(math.floor(seconds * fps + 1e-6))  # 1e-6: a frame's own start time is that frame
    rest, frame = divmod(frames, base)
    rest, second = divmod(rest, 60)
    hour, minute = divmod(rest, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}:{frame:02d}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return ""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


ELIDED_MINIMUM = 48  # pixels an eliding label keeps, so a message is cut short, never gone


def eliding_label(parent=None, object_name: str = "hint"):
    """A one-line label that never widens its window: long text is elided at the right, whole in the
    tooltip (a plain QLabel asks for its full text width: one long error took the window past the
    screen). It shrinks to ELIDED_MINIMUM, not to nothing: with an Ignored size policy a crowded row gave
    it 0 px and its message vanished."""
    from PySide6.QtCore import QSize, Qt
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QLabel, QSizePolicy

    class ElidingLabel(QLabel):
        def setText(self, text: str) -> None:
            super().setText(text)
            self.setToolTip(text)

        def minimumSizeHint(self) -> QSize:
            return QSize(ELIDED_MINIMUM, super().minimumSizeHint().height())

        def sizeHint(self) -> QSize:
            return QSize(min(super().sizeHint().width(), 400), super().sizeHint().height())

        def paintEvent(self, event) -> None:
            painter = QPainter(self)
            painter.setPen(self.palette().color(self.foregroundRole()))
            text = self.fontMetrics().elidedText(self.text(), Qt.ElideRight, self.width())
            painter.drawText(self.rect(), int(Qt.AlignLeft | Qt.AlignVCenter), text)

    label = ElidingLabel(parent)
    label.setObjectName(object_name)
    label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)  # down to minimumSizeHint, no less
    return label


def eliding_status_bar(parent=None):
    """A status bar whose message is elided to the room left of its permanent widgets, whole in the
    tooltip (QStatusBar cuts a long message off mid-word at that widget's edge, with no way to read the
    rest). `currentMessage()` stays the whole text."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QStatusBar, QStyle, QStyleOption, QWidget

    class ElidingStatusBar(QStatusBar):
        def __init__(self, parent=None) -> None:
            super().__init__(parent)
            self.messageChanged.connect(self.setToolTip)

        def paintEvent(self, event) -> None:
            message = self.currentMessage()
            if not message:
                super().paintEvent(event)
                return
            painter = QPainter(self)
            option = QStyleOption()
            option.initFrom(self)
            self.style().drawPrimitive(QStyle.PE_PanelStatusBar, option, painter, self)
            children = self.findChildren(QWidget, options=Qt.FindDirectChildrenOnly)
            right = min((w.x() for w in children if w.isVisible()), default=self.width()) - 6
            rect = QRect(6, 0, max(right - 6, 0), self.height())
            text = self.fontMetrics().elidedText(message, Qt.ElideRight, rect.width())
            painter.setPen(self.palette().windowText().color())
            painter.drawText(rect, int(Qt.AlignLeft | Qt.AlignVCenter | Qt.TextSingleLine), text)

    return ElidingStatusBar(parent)
