"""A bundle's `manifest.json`: what each ONNX graph is, how to feed it, and the sha256 of every file.

Layout of a bundle folder:
    manifest.json            this file (format_version, kind, models, preprocessing, files, bundle_hash)
    frame_encoder.onnx       CLIP image tower, L2-normalised output        (when CLIP weights were given)
    frame_encoder.int8.onnx  the same, int8 dynamic quantisation           (optional variant)
    clip_text_encoder.onnx   CLIP text tower, L2-normalised output         (when CLIP weights were given)
    text_encoder.onnx        all-MiniLM-L6-v2, mean pooling + L2 norm
    query_tower.onnx, music_tower.onnx                                      (trained / demo bundles)
    towers.safetensors       the towers' torch weights, what `viml learn` fine-tunes (trained / demo)
    music/...                the music model's ONNX files
    tokenizers/bpe_simple_vocab_16e6.txt.gz, tokenizers/minilm_tokenizer.json

`bundle_hash` is the sha256 of the sorted file table: it names the exact weights, so a catalog that
stores it knows when its embeddings came from another bundle. `manifest_hash` is the sha256 of the
manifest's own canonical JSON (without that key): preprocessing, vocabularies and the analysis spec are
covered too, so a manifest edited by hand is refused. Every path a manifest names must be a relative path
inside the bundle and listed in the file table (`validate_manifest`). Only JSON is read here (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path, PureWindowsPath
from typing import Any, NoReturn

from viml.core.errors import UserFacingError

log = logging.getLogger(__name__)

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
MANIFEST_HASH = "manifest_hash"  # absent in bundles written before it existed: those keep loading
_SHA256 = re.compile(r"[0-9a-f]{64}")
_unhashed_seen: set[str] = set()


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


def compute_manifest_hash(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its own `manifest_hash`."""
    content = {key: value for key, value in manifest.items() if key != MANIFEST_HASH}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in `folder`, complete the manifest with the file table and its own hash, write
    it, return it. Also the way to change a manifest: load it, edit it, write it again here."""
    if manifest.get("kind") not in KINDS:
        raise ValueError(f"bundle kind must be one of {KINDS}, got {manifest.get('kind')!r}")
    files = hash_files(folder)
    complete = {k: v for k, v in manifest.items() if k != MANIFEST_HASH}
    complete.update(format_version=FORMAT_VERSION, files=files, bundle_hash=compute_bundle_hash(files))
    validate_manifest(complete, folder / MANIFEST_FILE)
    complete[MANIFEST_HASH] = compute_manifest_hash(complete)
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
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: the manifest is not a JSON object; rebuild the bundle")
    if manifest.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {manifest['format_version']} is not supported by this ViML "
            f"(it reads format {FORMAT_VERSION}); rebuild the bundle with this version"
        )
    validate_manifest(manifest, path)
    if MANIFEST_HASH not in manifest:
        if str(path) not in _unhashed_seen:
            _unhashed_seen.add(str(path))
            log.debug("%s was written before manifest hashes: its own content is not verified", path)
    elif manifest[MANIFEST_HASH] != compute_manifest_hash(manifest):
        raise BundleError(
            f"{path} was changed after the bundle was built (manifest_hash does not match its content); "
            "rebuild the bundle (`viml bundle build ...`) or copy it again"
        )
    return manifest


def validate_manifest(manifest: dict[str, Any], path: Path) -> None:
    """Refuse a manifest of the wrong shape, or naming a file that is outside the bundle or not hashed."""

    def refuse(entry: str, problem: str) -> NoReturn:
        raise BundleError(f"{path}: {entry} {problem}; rebuild the bundle")

    if any(key not in manifest for key in REQUIRED_KEYS):
        raise BundleError(f"{path}: manifest lacks required keys {REQUIRED_KEYS}; rebuild the bundle")
    if not isinstance(manifest["name"], str) or manifest["kind"] not in KINDS:
        refuse("name/kind", f"are not a name and one of {KINDS}")
    files, models = manifest["files"], manifest["models"]
    if not isinstance(files, dict):
        refuse("files", "is not a table of relative path -> sha256")
    for relative, digest in files.items():
        if not is_inside_path(relative):
            refuse(f"files entry {relative!r}", "is not a relative path inside the bundle")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            refuse(f"files[{relative!r}]", f"is not a sha256 ({digest!r})")
    if not isinstance(manifest["bundle_hash"], str) or not _SHA256.fullmatch(manifest["bundle_hash"]):
        refuse("bundle_hash", "is not a sha256")
    for key in ("preprocessing", "models"):
        if not isinstance(manifest[key], dict):
            refuse(key, "is not a mapping")
    named: list[tuple[str, object]] = []
    for role, model in models.items():
        if not isinstance(model, dict) or not isinstance(model.get("variants", {}), dict):
            refuse(f"models.{role}", "is not a model entry")
        named.append((f"models.{role}.file", model.get("file")))
        for variant, entry in model.get("variants", {}).items():
            named.append((f"models.{role}.variants.{variant}.file", _get(entry, "file")))
        if "tokenizer" in model:
            named.append((f"models.{role}.tokenizer.file", _get(model["tokenizer"], "file")))
    if "music_model" in manifest:
        folder = _get(manifest["music_model"], "folder")
        named.append(("music_model.folder", f"{folder}/manifest.json" if is_inside_path(folder) else folder))
    for entry, relative in named:
        if not is_inside_path(relative):
            refuse(entry, f"names {relative!r}, which is not a relative path inside the bundle")
        if relative not in files:
            refuse(entry, f"names {relative!r}, which is not in the file table (unverified)")
    if "text_input" in manifest and manifest["text_input"] not in models:
        refuse("text_input", f"names {manifest['text_input']!r}, which is not one of its models")
    from viml.engine.bundles.spec import spec_from_manifest

    try:
        spec_from_manifest(manifest).analysis_id  # noqa: B018 (reads every field once)
    except (TypeError, ValueError, AttributeError) as error:
        refuse("analysis", f"is not a valid analysis spec ({error})")


def is_inside_path(path: object) -> bool:
    """A non-empty relative POSIX path with no `..`, `.` or empty part (cannot leave its folder by name)."""
    if not isinstance(path, str) or not path or "\\" in path or PureWindowsPath(path).drive:
        return False
    return not path.startswith("/") and all(part not in ("", ".", "..") for part in path.split("/"))


def _get(entry: object, key: str) -> object:
    return entry.get(key) if isinstance(entry, dict) else None


def verify_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems found (missing, changed or unexpected files); an empty list means the bundle is intact."""
    folder = Path(folder)
    root = folder.resolve()
    problems = []
    for relative, expected in sorted(manifest["files"].items()):
        path = folder / relative
        if not path.is_file():
            problems.append(f"missing file {relative}")
        elif not path.resolve().is_relative_to(root):
            problems.append(f"{relative} is a link to a file outside the bundle")
        elif sha256_file(path) != expected:
            problems.append(f"{relative} does not match its sha256 (changed or corrupt)")
    if compute_bundle_hash(manifest["files"]) != manifest["bundle_hash"]:
        problems.append("bundle_hash does not match the file table")
    return problems
