"""What to search for: the prompt box, the influence slider, example prompts and the filters row.

The window asks `SearchBar.filters()` when it builds a query and re-queries on `changed`; the query runs
in `workers.LatestOnly`, so a filter change never blocks the GUI thread.

- The prompt keeps QLineEdit's undo history: an example or a recent prompt replaces the text as one
  undoable edit (select all + insert; `setText` would wipe the history), so Ctrl+Z brings back what was
  typed. Prompts the user settled on (Enter, or leaving the box) go to a recent list (AppSettings), offered
  by a completer and the Recent menu.
- The influence slider shows its value ("Video 30% · Text 70%", "Video only", "Text only"); its ends mean
  exactly that (SuggestRequest.prompt_share, search/query.py).
"""

from __future__ import annotations

import re

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from viml.desktop.settings import AppSettings
from viml.search.filters import Filters

EXAMPLE_PROMPTS = ("calm piano", "energetic rock with drums", "dreamy electronic", "sad strings")
RECENT_PROMPTS = 20
VOCALS_CHOICES = (("Any voice", None), ("With vocals", True), ("Instrumental", False))


def influence_text(value: int) -> str:
    """The slider's value in words: 0 and 100 are one side only."""
    if value <= 0:
        return "Video only"
    if value >= 100:
        return "Text only"
    return f"Video {100 - value}% · Text {value}%"


class PromptBox(QLineEdit):
    """The prompt line: replacements keep the undo history; settled prompts complete from a recent list."""

    settled = Signal(str)  # a prompt the user finished with (Enter or leaving the box)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, placeholderText="Describe the music (optional), e.g. calm piano")
        self.setClearButtonEnabled(True)
        self.recent = QStringListModel(self)
        completer = QCompleter(self.recent, self)
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setFilterMode(Qt.MatchContains)
        self.setCompleter(completer)
        self.editingFinished.connect(lambda: self.text().strip() and self.settled.emit(self.text().strip()))

    def replace_text(self, text: str) -> None:
        """Put `text` in the box as one undoable edit (Ctrl+Z brings back what was there)."""
        if text == self.text():
            return
        self.selectAll()
        self.insert(text)


class DurationBox(QSpinBox):
    """Seconds shown and typed as m:ss (plain seconds are read too); 0 reads "any"."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, minimum=0, maximum=99 * 60 + 59, singleStep=15)
        self.setSpecialValueText("any")

    def textFromValue(self, value: int) -> str:
        return f"{value // 60}:{value % 60:02d}"

    def valueFromText(self, text: str) -> int:
        minutes, _, seconds = text.strip().rpartition(":")
        try:
            return int(minutes or 0) * 60 + int(seconds or 0)
        except ValueError:
            return 0

    def validate(self, text: str, position: int):
        from PySide6.QtGui import QValidator

        if text.strip() in ("", "any") or re.fullmatch(r"\d*(:\d{0,2})?", text.strip()):
            return QValidator.Acceptable, text, position
        return QValidator.Invalid, text, position


def _bpm_box(parent: QWidget) -> QSpinBox:
    box = QSpinBox(parent, minimum=0, maximum=400, singleStep=5)
    box.setSpecialValueText("any")
    return box


class SearchBar(QWidget):
    """The prompt, the influence and the filters; `changed` whenever any of them changes."""

    changed = Signal()

    def __init__(self, settings: AppSettings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.prompt = PromptBox(self)
        self.prompt.recent.setStringList(settings.recent_prompts)
        self.prompt.settled.connect(self.remember_prompt)
        self.recent_button = QToolButton(self, text="Recent", popupMode=QToolButton.InstantPopup)
        self.recent_button.setToolTip("Prompts you used before")
        self.recent_button.setMenu(QMenu(self.recent_button))
        self.recent_button.menu().aboutToShow.connect(self._fill_recent_menu)
        self.influence = QSlider(Qt.Horizontal, self, minimum=0, maximum=100, value=50)
        self.influence.setToolTip(
            "How much the prompt counts against the picture. Video only: the prompt is ignored; "
            "Text only: the prompt's own ranking (the clip sets only how long each part is)"
        )
        self.influence_label = QLabel(self)
        self.influence_label.setObjectName("influenceValue")
        # As wide as its widest text, so the slider does not jump while dragged.
        widest = max(
            (influence_text(v) for v in (0, 1, 50, 99, 100)), key=self.fontMetrics().horizontalAdvance
        )
        self.influence_label.setMinimumWidth(self.fontMetrics().horizontalAdvance(widest) + 4)
        self.influence.valueChanged.connect(self._show_influence)
        self._show_influence(self.influence.value())

        self.min_bpm, self.max_bpm = _bpm_box(self), _bpm_box(self)
        self.min_duration, self.max_duration = DurationBox(self), DurationBox(self)
        self.genre = QLineEdit(self, placeholderText="Genre")
        self.genre.setClearButtonEnabled(True)
        self.genre.setMinimumWidth(self.fontMetrics().horizontalAdvance("Genre") + 40)
        self.genre.setToolTip("File-tag genre contains this text")
        self.vocals = QComboBox(self)
        for label, value in VOCALS_CHOICES:
            self.vocals.addItem(label, value)
        self.vocals.setToolTip("By the taggers: a track with vocals has a quarter or more of it sung")
        self.not_used = QCheckBox("Not used in this edit", self)
        self.not_used.setToolTip(
            "Leave out tracks marked used, and the music already on the timeline the clip came from"
        )
        self.clear_filters = QPushButton("Clear", self)
        self.clear_filters.setToolTip("Clear every filter")
        self.clear_filters.clicked.connect(self.reset_filters)
        self.filters_button = QToolButton(self, checkable=True)
        self.filters_button.setToolTip("Show the filters: BPM, length, genre, vocals, not used in this edit")
        self._build_layout()

        self.prompt.textChanged.connect(lambda *_: self.changed.emit())
        self.influence.valueChanged.connect(lambda *_: self.changed.emit())
        for box in (self.min_bpm, self.max_bpm, self.min_duration, self.max_duration):
            box.valueChanged.connect(lambda *_: self._filters_changed())
        self.genre.textChanged.connect(lambda *_: self._filters_changed())
        self.vocals.currentIndexChanged.connect(lambda *_: self._filters_changed())
        self.not_used.toggled.connect(lambda *_: self._filters_changed())
        self._filters_changed(emit=False)

    def _build_layout(self) -> None:
        line = QHBoxLayout()
        line.addWidget(self.prompt, 1)
        line.addWidget(self.recent_button)
        influence = QHBoxLayout()
        influence.addWidget(QLabel("Video", self))
        influence.addWidget(self.influence, 1)
        influence.addWidget(QLabel("Text", self))
        influence.addWidget(self.influence_label)
        examples = QHBoxLayout()
        examples.addWidget(QLabel("Try:", self))
        self.example_buttons = []
        for text in EXAMPLE_PROMPTS:
            button = QPushButton(text, self)
            button.setFlat(True)
            button.setCursor(Qt.PointingHandCursor)
            button.clicked.connect(lambda _checked=False, t=text: self.prompt.replace_text(t))
            examples.addWidget(button)
            self.example_buttons.append(button)
        examples.addStretch(1)
        examples.addWidget(self.filters_button)
        ranges = QHBoxLayout()
        for label, low, high in (
            ("BPM", self.min_bpm, self.max_bpm),
            ("Length", self.min_duration, self.max_duration),
        ):
            ranges.addWidget(QLabel(label, self))
            ranges.addWidget(low)
            ranges.addWidget(QLabel("–", self))
            ranges.addWidget(high)
            ranges.addSpacing(6)
        ranges.addWidget(self.genre, 1)
        choices = QHBoxLayout()
        choices.addWidget(self.vocals)
        choices.addWidget(self.not_used)
        choices.addStretch(1)
        choices.addWidget(self.clear_filters)
        # Folded under the Filters button (two rows, so they fit a 1024-pixel window beside the library):
        # open, they take two rows the results need at 640 px high.
        self.filters_panel = QWidget(self)
        panel = QVBoxLayout(self.filters_panel)
        panel.setContentsMargins(0, 0, 0, 0)
        panel.addLayout(ranges)
        panel.addLayout(choices)
        self.filters_panel.setVisible(self.filters_button.isChecked())
        self.filters_button.toggled.connect(self.filters_panel.setVisible)
        self.filters_button.toggled.connect(lambda *_: self._show_filter_count())
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for row in (line, influence, examples):
            column.addLayout(row)
        column.addWidget(self.filters_panel)

    def _show_filter_count(self) -> None:
        """The button reads "Filters ▸", or "Filters (2) ▸" while two are set: folded, it still says so."""
        count = self.filter_count()
        arrow = "▾" if self.filters_button.isChecked() else "▸"
        self.filters_button.setText(f"Filters ({count}) {arrow}" if count else f"Filters {arrow}")

    def filter_count(self) -> int:
        """How many filters are set (a range counts once)."""
        filters = self.filters()
        return sum(
            (
                bool(filters.min_bpm or filters.max_bpm),
                bool(filters.min_duration or filters.max_duration),
                bool(filters.genre),
                filters.vocals is not None,
                filters.exclude_used,
            )
        )

    # -- prompt -----------------------------------------------------------------------------------
    def remember_prompt(self, prompt: str) -> None:
        """Put a settled prompt first in the recent list (kept in the settings file)."""
        recent = [prompt, *(p for p in self.settings.recent_prompts if p.lower() != prompt.lower())]
        self.settings.recent_prompts = recent[:RECENT_PROMPTS]
        self.prompt.recent.setStringList(self.settings.recent_prompts)

    def _fill_recent_menu(self) -> None:
        menu = self.recent_button.menu()
        menu.clear()
        recent = self.settings.recent_prompts
        if not recent:
            menu.addAction("No recent prompts").setEnabled(False)
        for prompt in recent:
            action = menu.addAction(prompt)
            action.triggered.connect(lambda _checked=False, p=prompt: self.prompt.replace_text(p))

    def _show_influence(self, value: int) -> None:
        self.influence_label.setText(influence_text(value))

    # -- filters ----------------------------------------------------------------------------------
    def filters(self, exclude: set[str] | frozenset[str] = frozenset()) -> Filters:
        """The filters row as search filters; `exclude`: the music of the clip's timeline, left out
        with the used tracks when "Not used in this edit" is on."""
        not_used = self.not_used.isChecked()
        return Filters(
            min_bpm=self.min_bpm.value() or None,
            max_bpm=self.max_bpm.value() or None,
            min_duration=self.min_duration.value() or None,
            max_duration=self.max_duration.value() or None,
            genre=self.genre.text().strip() or None,
            vocals=self.vocals.currentData(),
            exclude_used=not_used,
            exclude=set(exclude) if not_used else set(),
        )

    def filtering(self) -> bool:
        """Whether any filter is set."""
        return self.filters() != Filters()

    def reset_filters(self) -> None:
        widgets = (self.min_bpm, self.max_bpm, self.min_duration, self.max_duration, self.genre, self.vocals,
                   self.not_used)  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        for box in (self.min_bpm, self.max_bpm, self.min_duration, self.max_duration):
            box.setValue(0)
        self.genre.clear()
        self.vocals.setCurrentIndex(0)
        self.not_used.setChecked(False)
        for widget in widgets:
            widget.blockSignals(False)
        self._filters_changed()

    def _filters_changed(self, emit: bool = True) -> None:
        self.clear_filters.setEnabled(self.filtering())
        self._show_filter_count()
        if emit:
            self.changed.emit()
