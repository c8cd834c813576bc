"""Shared test setup: every test gets its own VIML_HOME so nothing touches the user's data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_viml_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("viml_home")
    monkeypatch.setenv("VIML_HOME", str(home))
    return home
