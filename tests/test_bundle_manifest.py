"""Manifest hashing and verification, bundle store and default, settings file (no export needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from viml.core.errors import UserFacingError
from viml.core.settings import get_setting, set_setting, settings_path
from viml.engine.bundles.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    BundleError,
    compute_manifest_hash,
    read_manifest,
    verify_files,
    write_manifest,
)
from viml.engine.bundles.store import bundles_dir, list_bundles, resolve_bundle, set_default_bundle
from viml.engine.runtime.bundle import verify_bundle_files


def make_bundle(folder: Path, kind: str = "zero-shot") -> dict:
    folder.mkdir(parents=True)
    (folder / "a.onnx").write_bytes(b"graph-a")
    (folder / "music").mkdir()
    (folder / "music" / "manifest.json").write_text("{}")  # a nested manifest is hashed like any file
    models = {"text_encoder": {"file": "a.onnx", "embed_dim": 4}}
    return write_manifest(folder, {"name": folder.name, "kind": kind, "models": models, "preprocessing": {}})


def test_manifest_hashes_every_file(tmp_path: Path) -> None:
    manifest = make_bundle(tmp_path / "b")
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["files"]) == {"a.onnx", "music/manifest.json"}
    assert read_manifest(tmp_path / "b") == manifest
    assert verify_files(tmp_path / "b", manifest) == []
    assert manifest["manifest_hash"] == compute_manifest_hash(manifest)  # its own content is covered


def test_tampered_and_missing_files_are_named(tmp_path: Path) -> None:
    manifest = make_bundle(tmp_path / "b")
    (tmp_path / "b" / "a.onnx").write_bytes(b"graph-A")
    (tmp_path / "b" / "music" / "manifest.json").unlink()
    problems = verify_files(tmp_path / "b", manifest)
    assert any("a.onnx" in p and "sha256" in p for p in problems)
    assert any("missing file music/manifest.json" in p for p in problems)
    with pytest.raises(BundleError, match="failed verification"):
        verify_bundle_files(tmp_path / "b", manifest)


def test_bundle_hash_changes_with_weights(tmp_path: Path) -> None:
    first = make_bundle(tmp_path / "b")
    (tmp_path / "b" / "a.onnx").write_bytes(b"other weights")
    second = write_manifest(
        tmp_path / "b", {k: first[k] for k in ("name", "kind", "models", "preprocessing")}
    )
    assert first["bundle_hash"] != second["bundle_hash"]


def test_bad_manifests_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a model bundle"):
        read_manifest(tmp_path)
    manifest = make_bundle(tmp_path / "b")
    path = tmp_path / "b" / MANIFEST_FILE
    path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BundleError, match="format 99 is not supported"):
        read_manifest(tmp_path / "b")
    path.write_text("{not json")
    with pytest.raises(BundleError, match="unreadable manifest"):
        read_manifest(tmp_path / "b")
    with pytest.raises(ValueError, match="kind"):
        write_manifest(tmp_path / "b", {"name": "b", "kind": "weird", "models": {}, "preprocessing": {}})
    with pytest.raises(BundleError, match="not in the file table"):
        write_manifest(
            tmp_path / "b",
            {"name": "b", "kind": "demo", "models": {"x": {"file": "nope.onnx"}}, "preprocessing": {}},
        )


def test_store_lists_resolves_and_sets_default(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="viml bundle build --zero-shot"):
        resolve_bundle(None)
    make_bundle(bundles_dir() / "one")
    (bundles_dir() / "broken").mkdir()
    (bundles_dir() / ".half.building").mkdir()
    infos = {info.name: info for info in list_bundles()}
    assert set(infos) == {"one", "broken"} and infos["broken"].manifest is None
    assert resolve_bundle(None) == bundles_dir() / "one"  # the only intact bundle
    make_bundle(bundles_dir() / "two", kind="demo")
    with pytest.raises(BundleError, match="no default model bundle"):
        resolve_bundle(None)
    set_default_bundle("two")
    assert resolve_bundle(None) == bundles_dir() / "two"
    with pytest.raises(BundleError):
        set_default_bundle("broken")
    with pytest.raises(BundleError, match="bad bundle name"):
        set_default_bundle("../escape")
    with pytest.raises(BundleError, match="no bundle named"):
        resolve_bundle("missing")


def test_settings_keep_other_keys_and_report_corruption() -> None:
    set_setting("default_bundle", "a")
    set_setting("theme", "dark")
    set_setting("default_bundle", None)
    assert get_setting("theme") == "dark" and get_setting("default_bundle") is None
    settings_path().write_text("[1, 2]")
    with pytest.raises(UserFacingError, match="JSON object"):
        get_setting("theme")
