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
