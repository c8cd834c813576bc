"""Start the desktop app; `--screenshot` renders the window offscreen once it is idle and exits."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

IDLE_TIMEOUT_SECONDS = 60.0

# The system libraries Qt 6's xcb platform plugin loads (PySide6's plugins/platforms/libqxcb.so and its
# libQt6XcbQpa.so.6, read with ldd; tests/test_desktop_x11.py checks the list against the installed
# plugin), each with the Debian/Ubuntu package that ships it. Without one, Qt aborts the process when it
# creates the application ("could not load the Qt platform plugin xcb"); pip cannot install them.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether Qt will pick its X11 (xcb) platform: asked for, or the Linux default with an X display
    (a Wayland session's default is Wayland)."""
    asked = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if asked:
        return asked == "xcb"
    if not sys.platform.startswith("linux") or not environ.get("DISPLAY"):
        return False
    wayland = environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY")
    return not wayland


def missing_xcb_libraries() -> list[str]:
    """The xcb plugin's system libraries that cannot be loaded here (absent, or broken)."""
    missing = []
    for soname in XCB_LIBRARIES:
        try:
            ctypes.CDLL(soname)  # what Qt's plugin loader does next; each is needed by it anyway
        except OSError:
            missing.append(soname)
    return missing


def check_xcb_libraries() -> None:
    """Say which packages to install, instead of Qt's abort, when the xcb plugin cannot load."""
    from viml.core.errors import UserFacingError

    missing = missing_xcb_libraries()
    if not missing:
        return
    packages = " ".join(dict.fromkeys(XCB_LIBRARIES[soname] for soname in missing))
    wayland = ", or run it on Wayland (QT_QPA_PLATFORM=wayland)" if os.environ.get("WAYLAND_DISPLAY") else ""
    raise UserFacingError(
        f"the desktop app cannot open a window on X11: Qt's xcb platform needs system libraries that "
        f"are missing or broken here ({', '.join(missing)}). Install them with `sudo apt-get install "
        f"{packages}` (Debian/Ubuntu; scripts/system-deps.sh installs every system package ViML uses)"
        f"{wayland}"
    )


def create_application(offscreen: bool = False):
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None and uses_xcb():
        check_xcb_libraries()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ViML")
    app.setOrganizationName("ViML")
    return app


def wait_until_idle(app, window, settle_seconds: float = 0.3, timeout: float = IDLE_TIMEOUT_SECONDS) -> bool:
    """Process events until no background work is left and the window stayed idle for `settle_seconds`."""
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        app.processEvents()
        if window.is_idle():
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_seconds:
                return True
        else:
            idle_since = None
        time.sleep(0.01)
    return False


def save_screenshot(window, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        from viml.core.errors import UserFacingError

        raise UserFacingError(f"cannot write the screenshot to {path}")
    return path


def run(
    catalog: str | None = None,
    bundle: str | None = None,
    video: str | None = None,
    in_point: float | None = None,
    out_point: float | None = None,
    prompt: str | None = None,
    screenshot: str | None = None,
    state: str = "main",
) -> int:
    app = create_application(offscreen=screenshot is not None and not os.environ.get("DISPLAY"))
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    if catalog:
        settings.catalog = str(Path(catalog).resolve())
    if bundle:
        settings.bundle = bundle
    window = MainWindow(settings)
    window.show()
    if video:
        window.open_video(video, in_point, out_point)
    if prompt:
        window.prompt.setText(prompt)
    if screenshot is None:
        return app.exec()
    wait_until_idle(app, window)
    if video:  # let the first frame arrive before the query settles
        deadline = time.monotonic() + 5
        while window.player.view.image.isNull() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        wait_until_idle(app, window)
    target = window
    if state == "batch-tag":
        target = window.open_batch_tag()
        target.resize(640, 420)
        if catalog and settings.music_folders:
            target.folder.setText(settings.music_folders[0])
        wait_until_idle(app, window)
    save_screenshot(target, screenshot)
    window.close()
    return 0
