"""Where ViML keeps its data outside the checkout: models, caches, catalogs, demo worlds.

One place decides, so the CLI, the desktop app and the tests agree. `VIML_HOME` overrides everything
(tests point it at a temporary folder); otherwise the platform's user data folder is used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs


def viml_home() -> Path:
    override = os.environ.get("VIML_HOME")
    home = Path(override) if override else Path(platformdirs.user_data_dir("viml", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def models_dir() -> Path:
    """Converted and exported model files (ONNX, manifests)."""
    return _subdir("models")


def cache_dir() -> Path:
    """Re-creatable downloads and computed caches (wheels, features, LLM responses)."""
    return _subdir("cache")


def _subdir(name: str) -> Path:
    path = viml_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# Never opened when chosen, dropped or found among timelines: /proc/kmsg is a "regular" file whose read
# blocks until the kernel logs something (it froze the app), and files under /sys are not media either.
SYSTEM_FOLDERS = ("/proc", "/sys")


def special_file_problem(path: str, folder_ok: bool = False) -> str | None:
    """Why a chosen, dropped or found `path` must not be opened, or None for a regular file (or a folder,
    with `folder_ok`). Stats only, never opens: a FIFO blocks whoever opens it, a device can be endless, and a
    /proc file can block its reader; each is refused with a message instead."""
    real = os.path.realpath(path)  # lstat and readlink only
    for root in SYSTEM_FOLDERS:
        if real == root or real.startswith(root + "/"):
            return f"{path}: a system file under {root}, not media; not opened"
    try:
        info = os.stat(real)
    except OSError as error:
        return f"{path}: {error.strerror or error}"
    if stat.S_ISDIR(info.st_mode):
        return None if folder_ok else f"{path}: is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return f"{path}: not a regular file (a device, pipe or socket); not opened"
    return None
