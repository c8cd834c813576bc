"""Where the converted musicnn models live and what their manifest promises (shared by converter and run time).

The conversion records each ONNX file's sha256 in the folder's manifest; `verified_file` refuses a file
that is not a plain relative path inside the folder or does not match it (hashed once per process while
the file's size and mtime stay the same).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from viml.core.paths import models_dir

# sha256_file is the bundles' own, named here for the converter and `verified_file` (tests patch it here).
from viml.engine.bundles.manifest import is_inside_path, sha256_file

MUSICNN_VERSION = "0.1.0"
# Bump when the conversion output changes, so `viml convert-musicnn` redoes stale folders.
CONVERTER_VERSION = 2  # 2: adds the fused two-tagger graph
MANIFEST_NAME = "manifest.json"
# The two musicnn-architecture taggers; both feed every segment (MTT and MSD tag vocabularies).
MODEL_NAMES = ("MTT_musicnn", "MSD_musicnn")
CONVERT_COMMAND = "viml convert-musicnn"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Files that matched their recorded sha256 in this process: (resolved path, size, mtime_ns, sha256).
_verified: set[tuple[str, int, int, str]] = set()


def model_folder() -> Path:
    return models_dir() / "musicnn"


def verified_file(folder: Path, entry: object) -> Path:
    """The file a manifest entry ({"file": ..., "sha256": ...}) names, once it is known to be the converted
    one; raises ValueError saying what is wrong (outside the folder, missing, unhashed, changed)."""
    name = entry.get("file") if isinstance(entry, dict) else None
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not is_inside_path(name):
        raise ValueError(f"names {name!r}, which is not a file inside the folder")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{name} is a link to a file outside the folder")
    if not path.is_file():
        raise ValueError(f"{name} is missing")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ValueError(f"{name} has no sha256 recorded")
    stat = os.stat(path)
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest)
    if key not in _verified:
        if sha256_file(path) != digest:
            raise ValueError(f"{name} does not match the sha256 recorded at conversion (changed or corrupt)")
        _verified.add(key)
    return path
