"""Where ViML keeps its data outside the checkout: models, caches, catalogs, demo worlds.

One place decides, so the CLI, the desktop app and the tests agree. `VIML_HOME` overrides everything
(tests point it at a temporary folder); otherwise the platform's user data folder is used.
"""

from __future__ import annotations

import os
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
