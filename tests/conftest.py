"""Shared test setup: every test gets its own VIML_HOME so nothing touches the user's data."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Module- and session-scoped fixtures run before the per-test home below: without a home of their own they
# would read (and write) the user's real data, e.g. a default bundle `viml demo` installed there.
os.environ["VIML_HOME"] = tempfile.mkdtemp(prefix="viml-tests-home-")


@pytest.fixture(autouse=True)
def isolated_viml_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("viml_home")
    monkeypatch.setenv("VIML_HOME", str(home))
    return home
