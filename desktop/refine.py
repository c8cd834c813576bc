"""The "More like this…" action on a result: the result's part is the reference of a refined search,
and the words typed in a small dialog move it ("calmer, no drums": search/like.py).

The refinement holds until the prompt box changes (a new prompt is a new search); the clip and its
in/out still count by the influence slider. The results hint says what is searched: "Like <title>: <words>".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QLineEdit

if TYPE_CHECKING:
    from viml.desktop.main_window import MainWindow
    from viml.desktop.results import Suggestion

EXAMPLE_WORDS = "calmer, slower, brighter, without drums"


@dataclass(frozen=True)
class Refinement:
    like: str  # PATH@OFFSET: the result's part
    title: str
    words: str
    prompt: str  # the prompt box's text when it began: editing the prompt ends the refinement

    @property
    def hint(self) -> str:
        return f"Like {self.title}: {self.words}" if self.words else f"Like {self.title}"


class Refiner(QObject):
    """The action on the results' context menu, its dialog, and the refinement it starts."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.current: Refinement | None = None
        self.dialog: QInputDialog | None = None  # the open dialog (tests fill it in)
        self.action = QAction("More like this…", window)
        self.action.setToolTip("Search for music like this result, changed by a few words")
        self.action.triggered.connect(lambda: self.ask())

    def ask(self, suggestion: Suggestion | None = None) -> QInputDialog | None:
        """Ask for the words that move the selected (or given) result; the search runs when they come."""
        suggestion = suggestion or self.window.selected_suggestion()
        if suggestion is None:
            self.window.show_message("Pick a suggestion to search for more like it")
            return None
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("More like this")
        dialog.setLabelText(f"Like “{suggestion.title}”, but… (e.g. {EXAMPLE_WORDS}; empty: just like it)")
        dialog.setTextEchoMode(QLineEdit.Normal)
        dialog.textValueSelected.connect(lambda words: self.start(suggestion, words))
        dialog.finished.connect(lambda _result: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()  # not exec(): the window keeps drawing (and the tests keep running) while it is open
        return dialog

    def start(self, suggestion: Suggestion, words: str) -> None:
        """Search like `suggestion` (its part from its offset), moved by `words`."""
        self.current = Refinement(
            f"{suggestion.path}@{suggestion.offset:.3f}", suggestion.title, words.strip(),
            self.window.prompt.text().strip(),
        )  # fmt: skip
        # The hint beside the result buttons may be elided in a narrow window: the status bar says it too.
        self.window.show_message(f"{self.current.hint} (edit the prompt to search on your own again)")
        self.window.request_query(immediately=True)

    def apply(self, parameters: dict) -> dict:
        """The query's parameters with the refinement's reference and words, while it holds."""
        if self.current is not None and parameters.get("prompt", "") != self.current.prompt:
            self.current = None  # the prompt changed: a search of its own
        if self.current is not None:
            parameters = {**parameters, "like": self.current.like, "prompt": self.current.words}
        return parameters

    def hint(self, text: str) -> str:
        return f"{self.current.hint} — {text}" if self.current is not None else text
