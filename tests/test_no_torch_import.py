"""The run time, the catalog, the desktop app and the run-time CLI commands never import torch."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "viml.engine.runtime",
    "viml.engine.runtime.query",
    "viml.engine.runtime.pipeline",
    "viml.engine.bundles.store",
    "viml.catalog",
    "viml.catalog.retrieval",
    "viml.desktop",
    "viml.cli",
    "viml.cli.bundle",
    "viml.settings",
    "viml.engine.media.video",
    "viml.engine.preprocess",
    "viml.engine.music.runtime",
]


def test_runtime_imports_no_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "from viml.cli import build_parser\n"
        "build_parser()\n"  # imports every CLI command module
        "heavy = sorted(m for m in ('torch', 'open_clip', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported at run time: {result.stdout.strip()}"
