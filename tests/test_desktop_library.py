"""The desktop library as an editor manages it (issue 16), in the real app offscreen with real scans (the
`viml scan` child, the cheap stats analyzer): add, remove and rescan music folders; failed files with
their reasons; a first run's problems that stay visible; a scan summary that accounts for every file;
drops that add nothing (the app's own excerpts, files already in the library); FIFOs and /proc files
refused without being opened. Drags that start in the app itself are tested in a real X server
(test_desktop_x11.py): the offscreen platform cannot drag."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from test_catalog_scan import STATS, write_wav
from viml.catalog.store import Catalog

GATED = "viml.demo.stats_analyzer:load_gated"


def make_window(qtbot, tmp_path, analyzer: str | None = STATS, folders=()):
    from viml.core.settings import set_setting
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    set_setting("desktop.analyzer", analyzer)
    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    settings.music_folders = [str(folder) for folder in folders]
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.is_idle, timeout=30000)
    return window


def music(root: Path, names: list[str], seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(names):
        write_wav(root / name, 3.0, seed + offset)
    return root


def broken(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")


def wait_scanned(qtbot, window, timeout: int = 120000) -> None:
    qtbot.waitUntil(
        lambda: window.scan_task is None and not window.scan_queue and window.is_idle(), timeout=timeout
    )


def rows(window) -> dict[str, tuple[str, str]]:
    """path -> (state, reason) of every row of the track list."""
    return {row.path: (row.state, row.reason) for row in window.library.model.rows}


def catalogued(window) -> set[str]:
    with Catalog(Path(window.settings.catalog)) as catalog:
        return {track.path for track in catalog.tracks()} | {error["path"] for error in catalog.errors()}


def test_removing_a_folder_forgets_its_tracks_in_the_library_and_the_search(qtbot, tmp_path):
    alpha = music(tmp_path / "alpha", ["one.wav", "two.wav"])
    bravo = music(tmp_path / "bravo", ["three.wav", "four.wav"], seed=10)
    broken(bravo, ["bad.wav"])
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(alpha), str(bravo)])
    wait_scanned(qtbot, window)
    qtbot.waitUntil(lambda: len(window.library.model.rows) == 5, timeout=10000)
    with Catalog(Path(window.settings.catalog)) as catalog:
        assert catalog.word_matches("bravo")  # the search's words know the folder

    window.library.select_folder(str(bravo))
    window.library.remove_button.click()
    qtbot.waitUntil(lambda: window.settings.music_folders == [str(alpha)] and window.is_idle(), timeout=20000)
    qtbot.waitUntil(
        lambda: set(rows(window)) == {str(alpha / "one.wav"), str(alpha / "two.wav")}, timeout=10000
    )
    assert window.library.folder_names() == [str(alpha)]
    assert catalogued(window) == {str(alpha / "one.wav"), str(alpha / "two.wav")}  # the failure went too
    with Catalog(Path(window.settings.catalog)) as catalog:
        ranked = catalog.load_tracks(cache=False).paths  # what every search ranks
        assert sorted(ranked) == [str(alpha / "one.wav"), str(alpha / "two.wav")]
        assert not catalog.word_matches("bravo")
    assert "Removed" in window.statusBar().currentMessage()

    # Adding it back links the kept analyses: nothing is analysed again.
    window.add_music_folders([str(bravo)])
    wait_scanned(qtbot, window)
    assert window.statusBar().currentMessage() == f"Scanned {bravo}: 2 added, 1 failed"
    assert window.scan_summaries[str(bravo)]["analysed"] == 0
    window.close()


def test_removing_an_inner_folder_keeps_what_the_outer_one_holds(qtbot, tmp_path):
    outer = music(tmp_path / "outer", ["top.wav"])
    inner = music(outer / "inner", ["deep.wav"], seed=5)
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(outer), str(inner)])
    wait_scanned(qtbot, window)
    window.remove_music_folder(str(inner))
    qtbot.waitUntil(lambda: window.settings.music_folders == [str(outer)] and window.is_idle(), timeout=20000)
    assert catalogued(window) == {str(outer / "top.wav"), str(inner / "deep.wav")}
    window.close()


def test_removing_a_folder_while_it_is_scanned_stops_the_scan_first(qtbot, tmp_path, monkeypatch):
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("VIML_TEST_SCAN_GATE", str(gate))  # the scan child analyses one file per ticket
    slow = music(tmp_path / "slow", [f"t{i}.wav" for i in range(4)])
    window = make_window(qtbot, tmp_path, analyzer=GATED)
    window.add_music_folders([str(slow)])
    (gate / "ticket-1").touch()
    qtbot.waitUntil(lambda: len(catalogued(window)) == 1 if Path(window.settings.catalog).exists() else False,
                    timeout=60000)  # fmt: skip
    window.remove_music_folder(str(slow))
    qtbot.waitUntil(lambda: window.settings.music_folders == [] and window.is_idle(), timeout=30000)
    assert catalogued(window) == set()  # also the file committed before the scan stopped
    assert list(gate.glob("ticket-*")) == []
    window.close()


def test_rescan_scans_only_the_chosen_folder(qtbot, tmp_path):
    alpha = music(tmp_path / "alpha", ["one.wav"])
    bravo = music(tmp_path / "bravo", ["two.wav"], seed=3)
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(alpha), str(bravo)])
    wait_scanned(qtbot, window)
    write_wav(alpha / "new.wav", 3.0, 7)
    write_wav(bravo / "ignored.wav", 3.0, 8)
    scanned: list[str] = []
    started = window._scan_next

    def follow() -> None:
        started()
        if window.scan_process is not None:
            scanned.append(window.scan_process.folder)

    window._scan_next = follow
    window.library.select_folder(str(alpha))
    window.library.rescan_button.click()
    wait_scanned(qtbot, window)
    assert scanned == [str(alpha)]
    assert window.statusBar().currentMessage() == f"Scanned {alpha}: 1 added, 1 unchanged"
    state = rows(window)
    assert state[str(alpha / "new.wav")][0] == "analysed"
    assert state[str(bravo / "ignored.wav")] == ("new", "not scanned yet: Scan analyses it")
    window.close()


def test_rescan_tries_the_failed_files_again(qtbot, tmp_path):
    """A file that failed is skipped by later scans until it changes; Rescan is the user asking again."""
    folder = music(tmp_path / "music", ["good.wav", "mended.wav"])
    mended = folder / "mended.wav"
    stat, sound = mended.stat(), mended.read_bytes()
    mended.write_bytes(bytes(len(sound)))  # unreadable, with the size and mtime it will have when mended
    os.utime(mended, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(folder)])
    wait_scanned(qtbot, window)
    assert rows(window)[str(mended)][0] == "failed"
    mended.write_bytes(sound)
    os.utime(mended, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    window.scan_all()  # a plain scan trusts size and mtime: still failed
    wait_scanned(qtbot, window)
    assert rows(window)[str(mended)][0] == "failed"
    window.library.select_folder(str(folder))
    window.library.rescan_button.click()
    wait_scanned(qtbot, window)
    assert rows(window)[str(mended)][0] == "analysed"
    assert str(mended) in catalogued(window)
    window.close()


def test_failed_files_are_listed_with_their_reasons(qtbot, tmp_path):
    folder = music(tmp_path / "music", ["good.wav"])
    broken(folder, ["bad.wav"])
    (folder / "empty.flac").write_bytes(b"")
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(folder)])
    wait_scanned(qtbot, window)
    panel = window.library
    qtbot.waitUntil(lambda: len(panel.model.rows) == 3, timeout=10000)
    assert 'href="failed">2 failed</a>' in panel.summary.text()
    panel.summary.linkActivated.emit("failed")  # a click on "2 failed"
    assert panel.state_filter.currentText() == "Failed"
    view = panel.table.model()
    shown = {
        view.index(r, 0).data(): view.index(r, panel.model.REASON_COLUMN).data()
        for r in range(view.rowCount())
    }
    assert set(shown) == {"bad.wav", "empty.flac"}
    assert shown["empty.flac"] == "empty: file is empty (0 bytes)"
    assert shown["bad.wav"].startswith("undecodable: ")
    assert not panel.table.isColumnHidden(panel.model.REASON_COLUMN) and panel.table.isColumnHidden(2)
    assert "empty (0 bytes)" in view.index(0, 0).data(0x0003) + view.index(1, 0).data(0x0003)  # tooltips
    panel.state_filter.setCurrentText("All tracks")
    assert view.rowCount() == 3 and panel.table.isColumnHidden(panel.model.REASON_COLUMN)
    window.close()


def test_a_first_run_keeps_both_problems_in_sight(qtbot, tmp_path):
    """No music model converted and no bundle: the scan's error and the bundle's stay in the library
    panel (the status bar showed one, then the next message), and every unscanned file says why."""
    folder = music(tmp_path / "music", ["one.wav", "two.wav"])
    window = make_window(qtbot, tmp_path, analyzer=None)  # the product's music model: not converted here
    width = window.width()
    window.add_music_folders([str(folder)])
    wait_scanned(qtbot, window)
    qtbot.waitUntil(lambda: len(window.library.problem_lines()) == 2, timeout=20000)
    problems = "\n".join(window.library.problem_lines())
    assert "music model is not converted" in problems and "viml convert-musicnn" in problems
    assert "model bundle" in problems
    assert window.width() == width and window.minimumSizeHint().width() <= width  # lines wrap, never widen
    window.show_message("Something else")  # the status bar moves on; the panel keeps them
    assert window.library.problems.isVisible() and "not converted" in window.library.problems.text()
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=10000)
    for state, reason in rows(window).values():
        assert state == "new" and "not analysed: " in reason and "not converted" in reason
    window.close()


def test_the_scan_summary_counts_tracks_linked_to_known_audio(qtbot, tmp_path):
    """Copies of analysed audio are linked, not analysed: the line read "0 analysed, 0 unchanged, 3 failed"
    for a folder that added 2 tracks."""
    first = music(tmp_path / "first", ["a.wav", "b.wav"])
    second = tmp_path / "second"
    second.mkdir()
    for name in ("a.wav", "b.wav"):
        shutil.copy(first / name, second / f"copy-{name}")
    broken(second, ["x.wav", "y.wav", "z.wav"])
    window = make_window(qtbot, tmp_path)
    window.add_music_folders([str(first)])
    wait_scanned(qtbot, window)
    window.add_music_folders([str(second)])
    wait_scanned(qtbot, window)
    assert window.statusBar().currentMessage() == f"Scanned {second}: 2 added, 3 failed"
    summary = window.scan_summaries[str(second)]
    assert summary["outcomes"] == {"linked": 2, "failed": 3}  # the child's file events agree
    window.close()


def fifo_reader_watch(fifo: Path) -> subprocess.Popen:
    """A writer that waits for a reader: it exits only once something opened `fifo` for reading."""
    os.mkfifo(fifo)
    return subprocess.Popen(["sh", "-c", 'exec 3>"$0"', str(fifo)])


def test_pipes_and_proc_files_are_refused_without_being_opened(qtbot, tmp_path):
    """A FIFO named like a video, a timeline or a music file, and /proc/self/status (a "regular" file of
    size 0, as /proc/kmsg is, whose read blocked the app): refused with a message, never opened (the
    timeline reader held the GIL while blocked on a FIFO, freezing the whole app)."""
    window = make_window(qtbot, tmp_path)
    watches = {}
    for name in ("clip.mp4", "cut.otio", "song.wav"):
        watches[name] = fifo_reader_watch(tmp_path / name)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    try:
        window.open_video(str(tmp_path / "clip.mp4"))
        window.open_timeline(str(tmp_path / "cut.otio"))
        window.open_dropped([str(tmp_path / "song.wav")])
        window.open_video("/proc/self/status")
        qtbot.waitUntil(window.is_idle, timeout=10000)
        qtbot.wait(200)
        assert {name: watch.poll() for name, watch in watches.items()} == dict.fromkeys(watches)  # unopened
    finally:
        for watch in watches.values():
            watch.kill()
            watch.wait()
    refused = [m for m in messages if "not a regular file (a device, pipe or socket); not opened" in m]
    assert len(refused) == 3
    assert any(m == "/proc/self/status: a system file under /proc, not media; not opened" for m in messages)
    assert window.player.path is None and window.settings.music_folders == []
    window.close()


def drop_on(window, widget, paths: list[str]) -> None:
    """An outside drop (a file manager's): enter, move and drop events through the window's QWindow, which
    hands them to the widget under the point as Qt does for a platform drag."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
    from PySide6.QtWidgets import QApplication
    from viml.desktop.results import file_mime_data

    data = file_mime_data(paths)
    point = widget.mapTo(window, widget.rect().center())
    handle = window.windowHandle()
    for event in (
        # Qt's enter/move events take a QPoint, the drop a QPointF (PySide6 6.11 holds to that).
        QDragEnterEvent(point, Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier),
        QDragMoveEvent(point, Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier),
        QDropEvent(QPointF(point), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier),
    ):
        QApplication.sendEvent(handle, event)


def test_drops_of_own_excerpts_and_library_files_add_nothing(qtbot, tmp_path):
    library = music(tmp_path / "library", ["top.wav"])
    inside = music(library / "sub", ["deep.wav"], seed=4)
    outside = music(tmp_path / "new music", ["fresh.wav"], seed=9)
    window = make_window(qtbot, tmp_path, folders=[library])
    excerpt = window.excerpts.cache.folder / "entry" / "excerpt.wav"
    excerpt.parent.mkdir(parents=True)
    shutil.copy(library / "top.wav", excerpt)
    targets = (window.library.table.viewport(), window.player.view, window.results.viewport())
    for widget in targets:
        drop_on(window, widget, [str(excerpt)])
        assert "an excerpt this app rendered" in window.statusBar().currentMessage()
        drop_on(window, widget, [str(inside / "deep.wav")])
        assert window.statusBar().currentMessage() == f"deep.wav is already in the library (in {library})"
        assert window.settings.music_folders == [str(library)] and window.scan_task is None
    drop_on(window, window.player.view, [str(outside / "fresh.wav")])  # from outside: it joins
    assert window.settings.music_folders == [str(library), str(outside)]
    assert window.scan_task is not None
    window.cancel_scan()
    wait_scanned(qtbot, window)
    window.close()


@pytest.mark.parametrize("path", ["/proc", "/sys/kernel"])
def test_system_folders_are_not_added(qtbot, tmp_path, path):
    window = make_window(qtbot, tmp_path)
    window.open_dropped([path])
    assert window.settings.music_folders == [] and window.scan_task is None
    assert "a system file under" in window.statusBar().currentMessage()
    window.close()
