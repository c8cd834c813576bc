"""Save screenshots of the desktop app's main states into docs/screenshots/ (offscreen, ~1 minute).

Builds a small demo world, scans it with the catalog's test analyzer (fast, no model weights) and
renders: the library after a scan, results with match curves for a world clip, and the batch-tag dialog.
Until the bundle runtime's query encoder is installed, results come from the clip's own soundtrack in the
music-embedding space (the same engine the desktop tests use); the screenshot says nothing more than that.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main(out: Path = Path("docs/screenshots")) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="viml-shots-"))
    os.environ["VIML_HOME"] = str(scratch / "home")
    from test_desktop_app import STATS, audio_query_engine
    from viml.desktop import backend
    from viml.desktop.app import create_application, save_screenshot, wait_until_idle
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings
    from viml.engine.world.generate import generate_world

    world = generate_world(scratch / "world", pieces=8, seed=7, seconds=(24, 36), video_audio=True)
    app = create_application()
    settings = AppSettings()
    settings.catalog = str(scratch / "catalog.sqlite")
    AppSettings.analyzer = property(lambda self: STATS)
    backend.set_query_engine_factory(audio_query_engine)
    window = MainWindow(settings)
    window.show()
    window.add_music_folders([str(world.root / "music")])
    while window.scan_task is not None or window.scan_queue:
        app.processEvents()
        time.sleep(0.02)
    wait_until_idle(app, window)
    save_screenshot(window, out / "library.png")

    window.open_video(str(world.root / world.pieces[3].video), 2.0, 14.0)
    wait_until_idle(app, window)
    window.player.seek(6.0)
    wait_until_idle(app, window, settle_seconds=1.0)
    save_screenshot(window, out / "results.png")

    dialog = window.open_batch_tag()
    dialog.folder.setText(str(world.root / "music"))
    wait_until_idle(app, window)
    save_screenshot(dialog, out / "batch-tag.png")
    window.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
