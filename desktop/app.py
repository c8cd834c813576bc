"""Start the desktop app; `--screenshot` renders the window offscreen once it is idle and exits."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

IDLE_TIMEOUT_SECONDS = 60.0


def create_application(offscreen: bool = False):
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

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
