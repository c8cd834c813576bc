"""Print the package import graph of the `viml` namespace: `python scripts/import_graph.py [--modules]`.

Reads every module's imports with `ast` (nothing is imported), maps each repository file to its
installed name (`engine/x.py` -> `viml.engine.x`) and prints, per package, the packages it imports.
Imports inside functions count too: a lazy import is still a dependency. `tests/test_layers.py` checks
the same graph against the layer contract.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Repository folders installed inside the `viml` namespace (setup.py maps them).
MAPPED = ("core", "engine", "training", "catalog", "search", "export_onnx", "learning", "demo", "desktop")


def module_files() -> dict[str, Path]:
    """Installed module name -> file, for every module of the product."""
    found: dict[str, Path] = {}
    for top in (*MAPPED, "viml"):
        folder = ROOT / top
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts if parts[0] == "viml" else ["viml", *parts])
            found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def package_of(module: str) -> str:
    """'viml.engine.media.audio' -> 'engine'; 'viml.cli.scan' -> 'cli'; 'viml.core.errors' -> 'viml'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*MAPPED, "cli") else "viml"


def module_graph() -> dict[str, set[str]]:
    files = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {target for target in imports_of(path) if target in files and target != name}
    return graph


def package_graph() -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in module_graph().items():
        source = package_of(module)
        packages[source] |= {package_of(t) for t in targets} - {source}
    return packages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list module-level edges across packages")
    args = parser.parse_args()
    if args.modules:
        for module, targets in sorted(module_graph().items()):
            for target in sorted(targets):
                if package_of(target) != package_of(module):
                    print(f"{module} -> {target}")
        return 0
    graph = package_graph()
    for package in sorted(graph):
        print(f"{package:12} -> {', '.join(sorted(graph[package])) or '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
