"""Where the converted musicnn models live and what their manifest promises (shared by converter and run time)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from viml.core.paths import models_dir

MUSICNN_VERSION = "0.1.0"
# Bump when the conversion output changes, so `viml convert-musicnn` redoes stale folders.
CONVERTER_VERSION = 2  # 2: adds the fused two-tagger graph
MANIFEST_NAME = "manifest.json"
# The two musicnn-architecture taggers; both feed every segment (MTT and MSD tag vocabularies).
MODEL_NAMES = ("MTT_musicnn", "MSD_musicnn")
CONVERT_COMMAND = "viml convert-musicnn"


def model_folder() -> Path:
    return models_dir() / "musicnn"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
