"""The desktop app in a real X server (Xvfb, Qt's xcb platform), as on a user's Linux desktop: it starts,
says which system packages are missing instead of aborting, and a drag that started in the app (a
suggestion, a library track) let go over any of its own widgets adds nothing and starts no scan; and the
editor's own tests (keys, filters, influence, batch tag, export) pass there too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import x11
from viml.desktop.app import XCB_LIBRARIES, uses_xcb

CLI = ["-c", "import sys; from viml.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def display():
    with x11.xvfb() as name:
        yield name


def test_own_drags_let_go_over_the_app_add_nothing(display, tmp_path):
    """Real xcb drags (Qt's drag loop, X's drag-and-drop protocol to our own window) of a suggestion and
    of a library track onto the library table, its filter box, the player, the prompt and the results.
    Before the fix a library track let go over the table, the player or the results added its folder and
    started a scan, and either drag over a text box pasted its path there."""
    done = x11.run_in_x(display, tmp_path / "home", ["x11_drag_scenario.py", str(tmp_path)])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb"
    library = str(tmp_path / "library")
    assert len(report["drops"]) == 10
    for name, drop in report["drops"].items():
        assert drop["drag events"] > 0, f"{name}: the drag never reached the window"
        assert drop["folders"] == [library], name
        assert not drop["scanning"], name
        assert not drop["prompt changed"] and not drop["filter changed"], name


# The editor's checks of issue 16, run again in the real X server: transport keys through xcb's key
# events (wherever focus is, except while typing), the filters and the influence ends in the app, batch
# tag with partial failures and the export message.
EDITOR_TESTS = [
    "tests/x11_platform_check.py",
    "tests/test_desktop_transport.py",
    "tests/test_desktop_filters.py",
    "tests/test_influence.py::test_desktop_back_end_ends",
    "tests/test_desktop_editor.py::test_batch_tag_shows_good_tags_and_bad_reasons_when_some_files_fail",
    "tests/test_desktop_editor.py::test_export_says_where_the_timeline_went_or_why_not",
]


def test_the_editor_tests_pass_in_a_real_x_server(display, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *EDITOR_TESTS],
        cwd=REPO,
        env=x11.x11_environment(display, tmp_path / "home", QT_QPA_PLATFORM="xcb"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and "skipped" not in summary, summary


def test_the_app_starts_on_x11(display, tmp_path):
    shot = tmp_path / "shot.png"
    done = x11.run_in_x(
        display,
        tmp_path / "home",
        [*CLI, "app", "--screenshot", str(shot), "--catalog", str(tmp_path / "catalog.sqlite")],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 500
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
    assert len(colours) > 3  # a drawn window, not a blank grab


def test_a_missing_xcb_library_is_named_instead_of_an_abort(display, tmp_path):
    """An unloadable libxcb-cursor.so.0 (an empty file first on the library path, as broken as an absent
    one): Qt aborted (SIGABRT, "could not load the Qt platform plugin xcb"); the app now exits 1 and names
    the package."""
    broken = tmp_path / "broken-libs"
    broken.mkdir()
    (broken / "libxcb-cursor.so.0").write_bytes(b"")
    done = x11.run_in_x(display, tmp_path / "home", [*CLI, "app"], timeout=60, LD_LIBRARY_PATH=str(broken))
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "libxcb-cursor0" in done.stderr and "apt-get install" in done.stderr
    assert "system-deps.sh" in done.stderr
    assert "platform plugin" not in done.stderr  # Qt never got to try


def needed_libraries(path: Path) -> set[str]:
    """The DT_NEEDED entries of a shared library (readelf)."""
    output = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", output))


def test_the_xcb_library_table_covers_what_the_plugin_links():
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    plugin, qpa = qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"
    system = {
        name
        for name in needed_libraries(plugin) | needed_libraries(qpa)
        if not name.startswith(("libQt6", "libc.so", "libm.so", "libstdc++", "libgcc_s"))
    }
    assert system and system <= set(XCB_LIBRARIES), system - set(XCB_LIBRARIES)
    script = (REPO / "scripts" / "system-deps.sh").read_text()
    listed = set(re.search(r"packages=\(([^)]*)\)", script).group(1).split())
    assert set(XCB_LIBRARIES.values()) <= listed, set(XCB_LIBRARIES.values()) - listed


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, False),
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, False),
        ({}, False),
    ],
)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 defaults are Linux's")
def test_when_the_check_runs(environment, expected):
    assert uses_xcb(environment) is expected
