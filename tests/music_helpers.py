"""Shared by the music tests: convert musicnn once per test module into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def converted_models(tmp_path_factory) -> Path:
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.musicnn import convert, find_musicnn

    try:
        source = find_musicnn(download=False)
    except WeightsUnavailableError:
        pytest.skip("the musicnn 0.1.0 wheel is not available offline on this machine")
    return convert(wheel=source.path, output=tmp_path_factory.mktemp("musicnn"))


def install_models(folder: Path, home: Path) -> Path:
    """Copy converted models into a VIML_HOME, where the CLI looks for them."""
    target = home / "models" / "musicnn"
    shutil.copytree(folder, target, dirs_exist_ok=True)
    return target
