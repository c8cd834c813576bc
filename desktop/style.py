"""Small shared look-and-feel helpers for the desktop widgets."""

from __future__ import annotations

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


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return ""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def eliding_label(parent=None, object_name: str = "hint"):
    """A one-line label that never widens its window: long text is elided at the right, whole in the
    tooltip (a plain QLabel asks for its full text width: one long error took the window past the
    screen)."""
    from PySide6.QtCore import QSize, Qt
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QLabel, QSizePolicy

    class ElidingLabel(QLabel):
        def setText(self, text: str) -> None:
            super().setText(text)
            self.setToolTip(text)

        def minimumSizeHint(self) -> QSize:
            return QSize(40, super().minimumSizeHint().height())

        def sizeHint(self) -> QSize:
            return QSize(min(super().sizeHint().width(), 400), super().sizeHint().height())

        def paintEvent(self, event) -> None:
            painter = QPainter(self)
            painter.setPen(self.palette().color(self.foregroundRole()))
            text = self.fontMetrics().elidedText(self.text(), Qt.ElideRight, self.width())
            painter.drawText(self.rect(), int(Qt.AlignLeft | Qt.AlignVCenter), text)

    label = ElidingLabel(parent)
    label.setObjectName(object_name)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label
