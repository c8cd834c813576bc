"""The Qt binding itself: PySide6 6.12.0 dropped a reference to None on every call that returns nothing,
and Python 3.11 aborts ("deallocating None") once the count runs out — a desktop session of a few hours,
or one paint benchmark. pyproject.toml excludes that release; this test says so if one comes back."""

from __future__ import annotations

import sys

from PySide6.QtGui import QColor, QPainterPath


def test_qt_calls_that_return_nothing_keep_nones_reference_count() -> None:
    colour, path = QColor(), QPainterPath()
    before = sys.getrefcount(None)
    for _ in range(1000):
        colour.setRed(5)
        path.lineTo(1.0, 2.0)
    # Other threads may hold or drop a few references meanwhile; a leak loses 2,000.
    assert before - sys.getrefcount(None) < 100
