"""Layouts that hold (issue 16) at 1920×1080, 1280×720 and 1024×640, offscreen and in a real X server
(Xvfb, Qt's xcb platform): with a populated window (tests/layout_scenario.py: long folder paths and
titles, failed files, a clip, twenty results with waveforms, the first run's long problems, a long status
message) the window takes exactly the size asked for, no widget lies outside it, no button is narrower
than its text, wrapped messages have the height they need, elided ones keep their text in a tooltip,
columns are as wide as their header and (the content-sized ones) their content, and the results'
picture is seen whole. The Settings dialog is checked the same way at the size it opens with."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import x11
from layout_scenario import SIZES, populated_window, problems_at


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_layout_holds_offscreen(qtbot, tmp_path, size):
    window = populated_window(tmp_path, size)
    qtbot.addWidget(window)
    assert problems_at(window, size) == []
    window.close()


def test_the_layout_holds_in_a_real_x_server(tmp_path):
    sizes = [f"{w}x{h}" for w, h in SIZES]
    with x11.xvfb("2000x1200x24") as display:  # room for the largest window (no window manager)
        done = x11.run_in_x(display, tmp_path / "home", ["layout_scenario.py", str(tmp_path), *sizes])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb"
    assert report["sizes"] == {size: [] for size in sizes}


def test_the_filters_fold_under_a_button_that_counts_them(qtbot, tmp_path):
    """Folded (the default) the filters take no rows; set while folded, the button still says so."""
    window = populated_window(tmp_path, (1024, 640))
    qtbot.addWidget(window)
    bar = window.search_bar
    assert not bar.filters_panel.isVisible() and bar.filters_button.text() == "Filters ▸"
    bar.filters_button.click()
    assert bar.filters_panel.isVisible() and bar.min_bpm.isVisible()
    bar.min_bpm.setValue(90)
    bar.max_bpm.setValue(130)  # one range: one filter
    bar.vocals.setCurrentIndex(2)
    assert bar.filters_button.text() == "Filters (2) ▾"
    bar.filters_button.click()
    assert not bar.filters_panel.isVisible() and bar.filters_button.text() == "Filters (2) ▸"
    assert window.query_parameters()["filters"].min_bpm == 90  # folded filters still filter
    bar.reset_filters()
    assert bar.filters_button.text() == "Filters ▸"
    window.close()


def test_the_settings_dialog_is_not_cramped(qtbot, tmp_path):
    """At the size it opens with: it fits a 1024×640 screen, the groups' fields line up, every box shows
    its placeholder and its path whole (a 60-character catalog path), no label or button is cut."""
    from layout_scenario import dialog_problems
    from viml.desktop.dialogs import SettingsDialog

    window = populated_window(tmp_path, (1280, 720))
    qtbot.addWidget(window)
    window.settings.catalog = "/home/editor/Music/ViML catalogs/documentary-2024/catalog.sqlite"
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog_problems(dialog) == []
    fields = [dialog.bundle, dialog.provider, dialog.catalog, dialog.device, dialog.llm, dialog.llm_model]
    assert len({field.mapTo(dialog, field.rect().topLeft()).x() for field in fields}) == 1  # one column
    dialog.reject()
    window.close()


def test_the_learn_dialog_is_not_cramped(qtbot, tmp_path):
    """Learn from my edits at the size it opens with, showing a report and a pair left out."""
    from layout_scenario import dialog_problems
    from viml.desktop.learn_dialog import LearnDialog

    window = populated_window(tmp_path, (1280, 720))
    qtbot.addWidget(window)
    dialog = LearnDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.add_sources(
        ["/home/editor/Projects/documentary-2024/timelines", "/home/editor/Projects/ad.fcpxml"]
    )
    dialog.show()
    qtbot.waitExposed(dialog)
    new = {"median rank": 12.5, "R@10": 41.2, "pool": 1480}
    dialog.show_report({
        "bundle": "learned-4ce6cbd4", "training pairs": 212, "training projects": 31, "held-out pairs": 52,
        "held-out projects": ["a", "b", "c"], "start bundle": "demo", "made default": True,
        "default decision": "it does no worse than its start on the held-out edits: now the default",
        "held-out metrics, new bundle": new, "held-out metrics, start bundle": {**new, "median rank": 20.0},
        "skipped": [{"project": "/home/editor/Projects/ad.fcpxml", "what": "interview-03.mov at 00:01:10:00",
                     "why": "its music /home/editor/Music/old/theme.wav is not in the catalog: scan its folder first"}],
    })  # fmt: skip
    qtbot.wait(50)
    assert "now the default" in dialog.status.text() and "median rank 12.5" in dialog.summary.text()
    clip = dialog.skipped.item(0, 1)
    assert dialog.skipped.columnWidth(1) >= dialog.skipped.fontMetrics().horizontalAdvance(clip.text())
    assert dialog_problems(dialog) == []
    dialog.reject()
    window.close()
