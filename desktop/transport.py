"""Transport keys that work wherever focus is in a window, except while typing in a text field.

Editors expect Space, J/K/L, I/O, the arrows and Home/End to drive the player whichever panel was
clicked last (the results, the library, a button), as in their own apps. One application event filter
sees each key press before the focused widget does and runs the bound action when the press belongs to
the anchor's window and the focus is not in a text field. A QShortcut would not do: it takes Enter and
Esc from a line edit even while the user types there (QLineEdit lets only printable and editing keys
override shortcuts), and a slot that declines cannot hand the key back.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

# What tells bindings apart; the keypad flag is not one (arrow keys carry it on macOS).
MODIFIERS = Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier


def is_typing(widget: QWidget | None) -> bool:
    """Whether keys sent to `widget` are text being typed: an editable line, text box, spin box or
    editable combo box (read-only text is not typed into, so the transport keeps its keys there)."""
    if isinstance(widget, QLineEdit | QTextEdit | QPlainTextEdit):
        return not widget.isReadOnly()
    if isinstance(widget, QAbstractSpinBox):
        return not widget.isReadOnly()
    return isinstance(widget, QComboBox) and widget.isEditable()


def code(value: Qt.Key | Qt.KeyboardModifier | int) -> int:
    """A key or modifier as the int it stands for (PySide6's enums are Python enums, not ints)."""
    return int(getattr(value, "value", value))


def key_modifiers(event: QKeyEvent) -> int:
    return code(event.modifiers() & MODIFIERS)


class TransportKeys(QObject):
    """Key bindings for the window that holds `anchor`, whichever of its widgets has the focus."""

    def __init__(self, anchor: QWidget) -> None:
        super().__init__(anchor)
        self.anchor = anchor
        self._bindings: dict[tuple[int, int], tuple[Callable[[], object], bool]] = {}
        QApplication.instance().installEventFilter(self)  # removed by Qt when this object is deleted

    def bind(
        self,
        key: Qt.Key,
        action: Callable[[], object],
        modifiers: Qt.KeyboardModifier = Qt.NoModifier,
        repeat: bool = False,
    ) -> None:
        """Run `action` on `key` (+ exactly `modifiers`); held down it repeats only when `repeat`."""
        self._bindings[(code(key), code(modifiers))] = (action, repeat)

    def bound(self, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.NoModifier) -> bool:
        return (code(key), code(modifiers)) in self._bindings

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Every event of the application passes here: leave at the first test for all but key presses.
        if event.type() != QEvent.KeyPress or not watched.isWidgetType():
            return False  # a key reaches the window (QWindow) first, then the focus widget: act once
        binding = self._bindings.get((code(event.key()), key_modifiers(event)))
        if binding is None or watched.window() is not self.anchor.window():
            return False  # not ours, or pressed in another window (a dialog, a popup, a menu)
        # A key a line edit does not use (Left at its start) goes on to its parents: still typing.
        if is_typing(watched) or is_typing(QApplication.focusWidget()):
            return False
        action, repeat = binding
        if repeat or not event.isAutoRepeat():
            action()
        return True
