"""Map the repository's top-level folders into the one `viml` namespace.

`engine/`, `catalog/`, `export_onnx/` and `desktop/` sit at the top of the repository (easy to find),
but install as `viml.engine`, `viml.catalog`, ... so generic names never collide in site-packages.
Everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED_FOLDERS = (
    "core",
    "engine",
    "training",
    "catalog",
    "search",
    "export_onnx",
    "learning",
    "demo",
    "desktop",
)

packages = find_packages(include=["viml", "viml.*"])
package_dir = {"viml": "viml"}
for folder in MAPPED_FOLDERS:
    package_dir[f"viml.{folder}"] = folder
    packages.append(f"viml.{folder}")
    packages += [f"viml.{folder}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages, package_dir=package_dir)
