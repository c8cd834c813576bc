"""The package layers, read from the import graph (scripts/import_graph.py): dependencies run one way.

    core ← engine ← catalog ← search ← {cli, desktop}
    engine ← training ← export_onnx;  {catalog, search, export_onnx} ← learning (your own edits);
    demo (the generated world, stand-ins) sits above all but the CLI

A lazy import inside a function counts as much as one at the top: the graph is read with `ast`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    "viml": set(),
    "core": set(),
    "engine": {"core"},
    "catalog": {"core", "engine"},
    "search": {"core", "engine", "catalog"},
    "desktop": {"core", "engine", "catalog", "search"},
    "training": {"core", "engine"},
    "export_onnx": {"core", "engine", "training"},
    "learning": {"core", "engine", "catalog", "search", "training", "export_onnx"},
    "demo": {"core", "engine", "training", "export_onnx", "catalog", "search", "learning"},
    "cli": {"core", "engine", "catalog", "search", "desktop", "training", "export_onnx", "learning", "demo"},
}
RUN_TIME = ("core", "engine", "catalog", "search", "desktop")
TORCH_SIDE = (
    "torch",
    "torchvision",
    "open_clip",
    "sentence_transformers",
    "transformers",
    "onnx",
    "tensorflow",
)


def import_graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


def test_packages_import_only_the_layers_below() -> None:
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.module_graph().items()):
        source = graph.package_of(module)
        for target in sorted(targets):
            package = graph.package_of(target)
            if package != source and package not in ALLOWED[source]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_every_package_is_in_the_contract() -> None:
    graph = import_graph()
    assert {graph.package_of(m) for m in graph.module_files()} <= set(ALLOWED)


def test_run_time_packages_never_name_torch() -> None:
    """Not even lazily: the run time has no torch path at all (training and export live elsewhere)."""
    graph = import_graph()
    found = []
    for module, path in sorted(graph.module_files().items()):
        if graph.package_of(module) not in RUN_TIME:
            continue
        for name in graph.imports_of(path):
            if name.split(".")[0] in TORCH_SIDE:
                found.append(f"{module} imports {name}")
    assert not found, "\n".join(found)
