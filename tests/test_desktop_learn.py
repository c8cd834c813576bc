"""Learn from my edits in the app (desktop/learn_dialog.py): a real `viml learn` child on test_learn_train's
world (real zero-shot bundle with the tiny random CLIP, catalogued music), its progress bars, its report
and the pairs it left out, stopping it and going on; the Tools menu entry and the switch to a new default."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QMenu
from test_desktop_editor import make_window
from test_learn_train import COUNT, World, make_world, write_edit
from viml.core.processes import descendants
from viml.desktop.backend import VIML_COMMAND
from viml.desktop.learn_dialog import LearnDialog, ProgressReader, learn_command
from viml.desktop.settings import AppSettings

from tests.media_factory import write_audio

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return make_world(tmp_path_factory.mktemp("learn_world"))


def past_edits(world: World, folder) -> None:
    """Four projects of true pairs, and one whose music was never scanned (reported, not fatal)."""
    folder.mkdir()
    for project in range(COUNT // 2):
        write_edit(
            world,
            folder / f"project{project}.otio",
            [(2 * project, 2 * project), (2 * project + 1, 2 * project + 1)],
        )
    stray = write_audio(folder / "never-scanned.wav", seconds=30, sample_rate=8000, frequency=900)
    write_edit(world, folder / "stray.otio", [(0, 0)], music=[stray])


def settings_for(world: World) -> AppSettings:
    settings = AppSettings()
    settings.catalog = str(world.catalog)
    settings.bundle = str(world.base)
    return settings


def test_learning_in_the_app_shows_progress_the_report_and_what_was_left_out(qtbot, world, tmp_path):
    past_edits(world, tmp_path / "edits")
    dialog = LearnDialog(settings_for(world))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()  # nothing chosen yet
    assert "Add past timelines" in dialog.status.text() and dialog.task is None
    dialog.add_sources([str(tmp_path / "edits"), str(tmp_path / "edits")])
    assert dialog.source_paths() == [str(tmp_path / "edits")]
    dialog.epochs.setValue(3)
    dialog.keep_default.setChecked(True)
    stages, learned = [], []
    dialog.learned.connect(learned.append)
    dialog.start()
    dialog.task.signals.progress.connect(lambda done, total, stage: stages.append((stage, done, total)))
    qtbot.waitUntil(lambda: dialog.task is None, timeout=240_000)
    assert {"features", "train"} <= {stage for stage, _, _ in stages}, stages
    assert all(0 <= done <= total for _, done, total in stages)
    headline = dialog.status.text()
    assert "written, trained on 4 pairs from 2 project(s)" in headline and "default" in headline, headline
    assert "held-out edits" in dialog.summary.text() and "median rank" in dialog.summary.text()
    assert learned == [False]  # --no-default: the app keeps its bundle
    rows = {
        dialog.skipped.item(r, 0).text(): dialog.skipped.item(r, 2).text()
        for r in range(dialog.skipped.rowCount())
    }
    assert "stray.otio" in rows and "scan" in rows["stray.otio"], rows
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_stopping_a_run_ends_the_child_and_a_failing_one_says_why(qtbot, world, tmp_path):
    past_edits(world, tmp_path / "edits")
    dialog = LearnDialog(settings_for(world))
    qtbot.addWidget(dialog)
    dialog.add_sources([str(tmp_path / "edits")])
    dialog.epochs.setValue(200)  # long enough to be stopped while training
    dialog.keep_default.setChecked(True)
    before = set(descendants(os.getpid()).items())
    dialog.start()
    training = []
    dialog.task.signals.progress.connect(lambda done, total, stage: training.append(stage == "train"))
    qtbot.waitUntil(lambda: any(training), timeout=240_000)
    learner = set(descendants(os.getpid()).items()) - before  # the viml learn child
    assert learner
    dialog.close()  # closing the dialog stops the run too
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert dialog.status.text().startswith("Stopped.") and dialog.start_button.isEnabled()
    assert not learner & set(descendants(os.getpid()).items())  # ended, and waited for
    # A child that fails says why in one line (here: the catalog does not exist).
    dialog.settings.catalog = str(tmp_path / "no-such.sqlite")
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120_000)
    assert "no-such.sqlite" in dialog.status.text() and "Traceback" not in dialog.status.text()


def test_progress_reader_and_command():
    reader = ProgressReader()
    for piece in (
        "features:  50%|█████     | 4/8 [00:01<00:01,  3.2pair/s]",
        "error: the catalog is gone",
        "",
    ):
        reader.feed(piece)
    assert reader.latest == ("features", 4, 8) and reader.last_line() == "error: the catalog is gone"
    command = learn_command(["/edits"], True, True, 5, None, "demo")
    assert command[len(VIML_COMMAND) :] == ["learn", "/edits", "--json", "--progress", "--epochs", "5",
                                            "--from-marks", "--no-default", "--bundle", "demo"]  # fmt: skip


def test_the_tools_menu_opens_it_and_a_new_default_is_used(qtbot, monkeypatch, tmp_path):
    window = make_window(qtbot, tmp_path)
    actions = [a.text() for menu in window.menuBar().findChildren(QMenu) for a in menu.actions()]
    assert "Learn from my edits…" in actions
    dialog = window.open_learn()
    assert isinstance(dialog, LearnDialog) and dialog.isVisible()
    window.settings.bundle = "demo"
    reopened = []
    monkeypatch.setattr(window, "open_bundle", lambda: reopened.append(window.settings.bundle))
    dialog.learned.emit(False)
    assert reopened == [] and window.settings.bundle == "demo"
    dialog.learned.emit(True)
    assert reopened == [None]  # the new default bundle, which the learning wrote
    dialog.close()
    window.close()


def test_closing_the_window_ends_the_dialogs_child_processes(qtbot, monkeypatch, tmp_path):
    """Learning and batch tagging run in child processes; quitting the app must not leave them running
    unseen (before, closing the window left both going)."""
    import sys

    from viml.desktop import backend

    # Both dialogs' commands start with VIML_COMMAND: a child that outlives any test (its arguments unread).
    monkeypatch.setattr(backend, "VIML_COMMAND", [sys.executable, "-c", "import time; time.sleep(120)"])
    window = make_window(qtbot, tmp_path)
    before = set(descendants(os.getpid()).items())
    learning = window.open_learn()
    learning.add_sources([str(tmp_path)])
    learning.start()
    tagging = window.open_batch_tag()
    tagging.folder.setText(str(tmp_path))
    tagging.start()
    qtbot.waitUntil(lambda: len(set(descendants(os.getpid()).items()) - before) >= 2, timeout=20000)
    children = set(descendants(os.getpid()).items()) - before
    window.close()
    qtbot.waitUntil(lambda: learning.task is None and tagging.task is None, timeout=20000)
    assert not children & set(descendants(os.getpid()).items())
