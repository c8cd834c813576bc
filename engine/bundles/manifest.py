"""A bundle's `manifest.json`: what each ONNX graph is, how to feed it, and the sha256 of every file.

Layout of a bundle folder:
    manifest.json            this file (format_version, kind, models, preprocessing, files, bundle_hash)
    frame_encoder.onnx       CLIP image tower, L2-normalised output        (when CLIP weights were given)
    frame_encoder.int8.onnx  the same, int8 dynamic quantisation           (optional variant)
    clip_text_encoder.onnx   CLIP text tower, L2-normalised output         (when CLIP weights were given)
    text_encoder.onnx        all-MiniLM-L6-v2, mean pooling + L2 norm
    query_tower.onnx, music_tower.onnx                                      (trained / demo bundles)
    music/...                the music model's ONNX files
    tokenizers/bpe_simple_vocab_16e6.txt.gz, tokenizers/minilm_tokenizer.json

`bundle_hash` is the sha256 of the sorted file table: it names the exact weights, so a catalog that
stores it knows when its embeddings came from another bundle. Only JSON is read here (no pickle).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from viml.core.errors import UserFacingError

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
KINDS = ("trained", "zero-shot", "demo")
# What each kind is, in words a user reads (`viml bundle list`, the desktop's status bar).
KIND_WORDS = {
    "zero-shot": "pretrained taggers and text encoders, no ViML training",
    "trained": "ViML towers trained on your data",
    "demo": "ViML towers trained on the generated demo world, for trying the app",
}
REQUIRED_KEYS = ("format_version", "name", "kind", "models", "preprocessing", "files", "bundle_hash")


class BundleError(UserFacingError):
    """A bundle is missing, malformed, of an unknown format, or its files do not match their hashes."""


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` except its own manifest, keyed by POSIX relative path."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path != folder / MANIFEST_FILE and not path.name.startswith(".")
    }


def compute_bundle_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8")).hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in `folder`, complete the manifest with the file table, write it, return it."""
    if manifest.get("kind") not in KINDS:
        raise ValueError(f"bundle kind must be one of {KINDS}, got {manifest.get('kind')!r}")
    files = hash_files(folder)
    for role, model in manifest.get("models", {}).items():
        for path in _model_files(model):
            if path not in files:
                raise ValueError(f"manifest model {role!r} names {path!r}, which is not in {folder}")
    complete = {**manifest, "format_version": FORMAT_VERSION, "files": files}
    complete["bundle_hash"] = compute_bundle_hash(files)
    (folder / MANIFEST_FILE).write_text(
        json.dumps(complete, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return complete


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{folder}: not a model bundle (no {MANIFEST_FILE})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{path}: unreadable manifest ({error}); rebuild the bundle") from error
    if not isinstance(manifest, dict) or any(key not in manifest for key in REQUIRED_KEYS):
        raise BundleError(f"{path}: manifest lacks required keys {REQUIRED_KEYS}; rebuild the bundle")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {manifest['format_version']} is not supported by this ViML "
            f"(it reads format {FORMAT_VERSION}); rebuild the bundle with this version"
        )
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems found (missing, changed or unexpected files); an empty list means the bundle is intact."""
    folder = Path(folder)
    problems = []
    for relative, expected in sorted(manifest["files"].items()):
        path = folder / relative
        if not path.is_file():
            problems.append(f"missing file {relative}")
        elif sha256_file(path) != expected:
            problems.append(f"{relative} does not match its sha256 (changed or corrupt)")
    if compute_bundle_hash(manifest["files"]) != manifest["bundle_hash"]:
        problems.append("bundle_hash does not match the file table")
    return problems


def _model_files(model: dict[str, Any]) -> list[str]:
    files = [model["file"]] if "file" in model else []
    files += [variant["file"] for variant in model.get("variants", {}).values()]
    return files
