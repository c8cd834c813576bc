"""Save screenshots of the desktop app's main states into docs/screenshots/ (offscreen, ~2-4 minutes).

Everything is real and built the way the end-to-end tests build it (tests/e2e_helpers.py): a small
generated demo world (plus 12 longer pieces), the real musicnn models (`viml convert-musicnn`), and the
demo bundle (a tiny ViML model trained for a few steps on that world, exported with `viml export
--demo`). The app scans the world's music in its child `viml scan` process, then ranks a world clip (+ a
prompt) with the demo bundle, auditions the first suggestion (no audio device: the clip plays, the
now-playing marker runs), and the batch-tag dialog runs `viml tag` on the same folder. The window is shot
at the sizes the layout tests hold (tests/test_desktop_layout.py):

    results-1280x720.png  library-1280x720.png  results-1024x640.png  filters-1024x640.png
    settings.png  batch-tag.png

    python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from PySide6.QtCore import QCoreApplication

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VIML_PROVIDER", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def wait(app: QCoreApplication, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the app")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QCoreApplication, seconds: float = 0.3) -> None:
    """Let resizes, column fits (queued timers) and repaints run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    out = parser.parse_args().out

    import e2e_helpers as e2e
    from viml.demo.world.generate import generate_world

    world = e2e.world()
    # More and longer pieces than the tests' world, so the lists fill and match curves have several parts.
    more = generate_world(e2e.home().parent / "more-world", pieces=12, seed=11, seconds=(30, 60), workers=1)
    bundle = e2e.demo_bundle()  # trains and exports the demo bundle (~1-2 min on 2 busy cores)
    os.environ["VIML_HOME"] = str(e2e.home())  # the scan child finds the converted musicnn models here
    from viml.desktop.app import create_application, save_screenshot, wait_until_idle
    from viml.desktop.dialogs import SettingsDialog
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    app = create_application()
    settings = AppSettings()
    settings.catalog = str(e2e.home() / "screenshots-catalog.sqlite")
    settings.bundle = str(bundle)
    settings.music_folders = []
    window = MainWindow(settings, audio_device="no-such-device")
    window.resize(1280, 720)
    window.show()
    window.add_music_folders([str(world.root / "music"), str(more.root / "music")])
    wait(app, lambda: window.scan_task is None and not window.scan_queue and window.is_idle(), 300)
    wait_until_idle(app, window)

    piece = world.pieces[2]
    window.open_video(str(world.video_path(piece)), 1.0, 9.0)
    wait(app, lambda: window.player.duration > 0 and not window.player.view.image.isNull(), 30)
    window.prompt.setText(piece.tags[0] if piece.tags else "calm")
    wait(app, lambda: window.results_model.rowCount() > 0 and window.is_idle(), 120)
    wait_until_idle(app, window, settle_seconds=1.0)
    window.library.table.selectRow(1)
    # An audition of the first suggestion: no audio device here, so the clip plays alone, and the
    # now-playing marker runs on the suggestion's waveform.
    window.start_audition(0)
    wait(app, lambda: window.now_playing.path is not None and window.player.playing, 60)
    settle(app, 1.5)
    window.player.pause()  # the picture and the marker hold still for the shots
    settle(app)
    written = []

    def shot(target, name: str) -> None:
        settle(app)
        save_screenshot(target, out / name)
        written.append(name)

    shot(window, "results-1280x720.png")
    window.splitter.setSizes([620, 660])  # the library's room for titles and tags
    shot(window, "library-1280x720.png")
    window.resize(1024, 640)
    window.splitter.setSizes([340, 684])
    shot(window, "results-1024x640.png")
    bar = window.search_bar
    bar.filters_button.setChecked(True)
    bar.min_bpm.setValue(80)
    bar.max_bpm.setValue(140)
    bar.vocals.setCurrentIndex(2)  # instrumental
    wait_until_idle(app, window, settle_seconds=0.5)
    shot(window, "filters-1024x640.png")

    dialog = SettingsDialog(settings, window)
    dialog.show()
    shot(dialog, "settings.png")
    dialog.reject()
    dialog = window.open_batch_tag()
    dialog.folder.setText(str(more.root / "music"))
    dialog.start()
    wait(app, lambda: dialog.task is None and window.is_idle(), 180)
    shot(dialog, "batch-tag.png")
    dialog.close()
    window.stop_audition()
    window.close()
    print(f"screenshots written to {out}: {', '.join(written)}")


if __name__ == "__main__":
    main()
