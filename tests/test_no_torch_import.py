"""The run time (core, engine, catalog, search, desktop) and every CLI module import no torch.

Every module of those packages is really imported (found by walking the folders, so a new module is
covered without editing this list), then the CLI parser is built, which imports every command module.
"""

from __future__ import annotations

import subprocess
import sys

from test_layers import RUN_TIME, TORCH_SIDE, import_graph


def test_run_time_imports_no_torch() -> None:
    graph = import_graph()
    modules = sorted(
        m
        for m in graph.module_files()
        if graph.package_of(m) in (*RUN_TIME, "cli") and not m.endswith("__main__")
    )
    assert len(modules) > 60, modules  # the walk found the packages
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from viml.cli import build_parser\n"
        "build_parser()\n"
        f"heavy = sorted(m for m in {TORCH_SIDE!r} if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), (
        f"imported at run time: {result.stdout.strip()}"
    )
