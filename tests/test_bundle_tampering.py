"""Tampered bundles and converted music models are refused in one line, before any file is opened.

Every path a manifest names must be a relative path inside the bundle and in its file table; the manifest's
own content is covered by `manifest_hash`; the converted musicnn files must match the sha256 recorded at
conversion. Each case goes through `viml bundle verify` and `viml suggest` (open_bundle), in process: any
exception other than a one-line user error fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from viml.engine.bundles.manifest import (
    MANIFEST_FILE,
    BundleError,
    compute_manifest_hash,
    read_manifest,
    write_manifest,
)
from viml.engine.bundles.spec import AnalysisSpec
from viml.engine.music import manifest as music_manifest
from viml.engine.music.frontend import FRONT_END
from viml.engine.music.runtime import ModelsMissingError, MusicModel
from viml.engine.runtime.bundle import open_bundle

from viml.cli import main

Edit = Callable[[dict, Path], None]


def make_bundle(folder: Path) -> dict:
    """A small bundle as the builder writes it (model and tokenizer files are stand-in bytes)."""
    (folder / "tokenizers").mkdir(parents=True)
    (folder / "text_encoder.onnx").write_bytes(b"graph")
    (folder / "tokenizers" / "minilm_tokenizer.json").write_text("{}")
    (folder / "music").mkdir()
    (folder / "music" / "manifest.json").write_text("{}")
    model = {"file": "text_encoder.onnx", "embed_dim": 4}
    model["tokenizer"] = {"type": "minilm", "file": "tokenizers/minilm_tokenizer.json", "max_length": 8}
    manifest = {"name": "b", "kind": "zero-shot", "models": {"text_encoder": model}, "preprocessing": {}}
    manifest.update(text_input="text_encoder", music_model={"folder": "music", "name": "musicnn"})
    manifest["analysis"] = AnalysisSpec().to_json()
    return write_manifest(folder, manifest)


def rewrite(folder: Path, manifest: dict, seal: bool = True) -> None:
    """Write the manifest as a forger would: with its manifest_hash recomputed (seal) or left as it was."""
    if seal:
        manifest["manifest_hash"] = compute_manifest_hash(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def outside_copy(folder: Path, name: str = "text_encoder.onnx") -> Path:
    """A file outside the bundle with the same bytes as one inside (its sha256 matches the table)."""
    outside = folder.parent / f"outside-{name}"
    outside.write_bytes((folder / name).read_bytes())
    return outside


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tampered_bytes(m: dict, folder: Path) -> None:
    (folder / "text_encoder.onnx").write_bytes(b"other graph")


def _not_in_table(m: dict, folder: Path) -> None:
    (folder / "extra.onnx").write_bytes(b"unhashed graph")
    m["models"]["text_encoder"]["file"] = "extra.onnx"


def _absolute(m: dict, folder: Path) -> None:
    outside = str(outside_copy(folder))
    m["files"][outside] = sha(Path(outside))
    m["models"]["text_encoder"]["file"] = outside


def _dot_dot(m: dict, folder: Path) -> None:
    outside = outside_copy(folder)
    m["files"][f"../{outside.name}"] = sha(outside)
    m["models"]["text_encoder"]["file"] = f"../{outside.name}"


def _dot_dot_tokenizer(m: dict, folder: Path) -> None:
    m["models"]["text_encoder"]["tokenizer"]["file"] = "tokenizers/../../outside.json"


def _dot_dot_music(m: dict, folder: Path) -> None:
    m["music_model"]["folder"] = "../musicnn"


def _symlink(m: dict, folder: Path) -> None:
    outside = outside_copy(folder)
    (folder / "text_encoder.onnx").unlink()
    (folder / "text_encoder.onnx").symlink_to(outside)  # same bytes: only the link gives it away


def _files_list(m: dict, folder: Path) -> None:
    m["files"] = sorted(m["files"])


def _null_hash(m: dict, folder: Path) -> None:
    m["files"]["text_encoder.onnx"] = None


def _null_model_file(m: dict, folder: Path) -> None:
    m["models"]["text_encoder"]["file"] = None


def _models_list(m: dict, folder: Path) -> None:
    m["models"] = list(m["models"].values())


def _bad_analysis(m: dict, folder: Path) -> None:
    m["analysis"] = {"segment_seconds": "ten"}


TAMPERINGS: dict[str, tuple[Edit, str]] = {
    "tampered model file": (_tampered_bytes, "text_encoder.onnx does not match its sha256"),
    "file missing from the table": (_not_in_table, "models.text_encoder.file names 'extra.onnx'"),
    "absolute path": (_absolute, "not a relative path inside the bundle"),
    "../ path": (_dot_dot, "not a relative path inside the bundle"),
    "../ tokenizer": (_dot_dot_tokenizer, "models.text_encoder.tokenizer.file"),
    "../ music folder": (_dot_dot_music, "music_model.folder"),
    "symlink out of the folder": (_symlink, "text_encoder.onnx is a link to a file outside the bundle"),
    "files as a list": (_files_list, "files is not a table"),
    "null file hash": (_null_hash, "files['text_encoder.onnx'] is not a sha256 (None)"),
    "null model file": (_null_model_file, "models.text_encoder.file names None"),
    "models as a list": (_models_list, "models is not a mapping"),
    "bad analysis spec": (_bad_analysis, "analysis is not a valid analysis spec"),
}


def one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    text = (captured.out + captured.err).strip()
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("seal", [True, False], ids=["resealed", "legacy-no-manifest-hash"])
@pytest.mark.parametrize("case", list(TAMPERINGS))
def test_tampered_bundles_are_refused(tmp_path: Path, capsys, case: str, seal: bool) -> None:
    folder = tmp_path / "b"
    manifest = make_bundle(folder)
    edit, message = TAMPERINGS[case]
    edit(manifest, folder)
    if not seal:
        manifest.pop("manifest_hash", None)  # a bundle written before manifest hashes is checked the same way
    rewrite(folder, manifest, seal=seal)
    verify = one_line_error(capsys, "bundle", "verify", str(folder))
    assert message in verify
    suggest = one_line_error(capsys, "suggest", "--prompt", "piano", "--bundle", str(folder))
    assert suggest.startswith("viml: error:") and "\n" not in suggest and message in suggest
    with pytest.raises(BundleError, match="(?i)rebuild"):
        open_bundle(folder)


def test_a_hand_edited_manifest_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "b"
    manifest = make_bundle(folder)
    manifest["analysis"] = {**manifest["analysis"], "segment_seconds": 5.0}
    rewrite(folder, manifest, seal=False)
    for argv in (["bundle", "verify", str(folder)], ["suggest", "--prompt", "x", "--bundle", str(folder)]):
        text = one_line_error(capsys, *argv)
        assert "changed after the bundle was built" in text and "rebuild the bundle" in text
        assert "\n" not in text
    # Written again through the project's writer, the edit is the bundle's own content.
    write_manifest(folder, read_manifest_unchecked(folder))
    assert read_manifest(folder)["analysis"]["segment_seconds"] == 5.0


def read_manifest_unchecked(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def test_intact_and_legacy_bundles_verify(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "b"
    manifest = make_bundle(folder)
    assert main(["bundle", "verify", str(folder)]) == 0
    assert "all 3 files match" in capsys.readouterr().out
    manifest.pop("manifest_hash", None)
    rewrite(folder, manifest, seal=False)
    assert read_manifest(folder)["name"] == "b"
    assert main(["bundle", "verify", str(folder)]) == 0
    assert "not verified" in capsys.readouterr().out


# -- the converted musicnn folder (scans without a bundle, `viml tag`) ---------------------------------


def converted_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    models = {}
    for name in music_manifest.MODEL_NAMES:
        (folder / f"{name}.onnx").write_bytes(name.encode())
        models[name] = {"file": f"{name}.onnx", "sha256": sha(folder / f"{name}.onnx")}
        models[name].update(vocabulary=name.split("_")[0], tags=["piano"])
    (folder / "musicnn_fused.onnx").write_bytes(b"fused")
    fused = {"file": "musicnn_fused.onnx", "sha256": sha(folder / "musicnn_fused.onnx")}
    manifest = {"front_end": FRONT_END.as_dict(), "models": models, "fused": fused}
    (folder / music_manifest.MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def _edit_music(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / music_manifest.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


MUSIC_TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    "tampered fused graph": (
        lambda f: (f / "musicnn_fused.onnx").write_bytes(b"FUSED"),
        "musicnn_fused.onnx does not match the sha256 recorded at conversion",
    ),
    "tampered tagger": (
        lambda f: (f / "MSD_musicnn.onnx").write_bytes(b"other"),
        "MSD_musicnn.onnx does not match",
    ),
    "no sha256 recorded": (
        lambda f: _edit_music(f, lambda m: m["fused"].pop("sha256")),
        "musicnn_fused.onnx has no sha256 recorded",
    ),
    "../ path": (
        lambda f: _edit_music(f, lambda m: m["fused"].update(file="../musicnn_fused.onnx")),
        "not a file inside the folder",
    ),
    "symlink out of the folder": (
        lambda f: _symlink_music(f),
        "musicnn_fused.onnx is a link to a file outside the folder",
    ),
    "models as a list": (lambda f: _edit_music(f, lambda m: m.update(models=[])), "is malformed"),
}


def _symlink_music(folder: Path) -> None:
    outside = folder.parent / "fused-elsewhere.onnx"
    outside.write_bytes((folder / "musicnn_fused.onnx").read_bytes())
    (folder / "musicnn_fused.onnx").unlink()
    (folder / "musicnn_fused.onnx").symlink_to(outside)


@pytest.mark.parametrize("case", list(MUSIC_TAMPERINGS))
def test_tampered_converted_music_model_is_refused(
    isolated_viml_home: Path, tmp_path: Path, capsys, case: str
) -> None:
    folder = converted_folder(isolated_viml_home / "models" / "musicnn")
    tamper, message = MUSIC_TAMPERINGS[case]
    tamper(folder)
    with pytest.raises(ModelsMissingError, match="viml convert-musicnn --force"):
        MusicModel.load(device="cpu")
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    catalog = str(tmp_path / "catalog.sqlite")
    text = one_line_error(capsys, "tag", str(tmp_path / "song.wav"), "--catalog", catalog, "-j", "1")
    assert text.startswith("viml: error:") and "\n" not in text and message in text


def test_music_model_files_are_hashed_once_per_process(tmp_path: Path, monkeypatch) -> None:
    folder = converted_folder(tmp_path / "musicnn")
    entry = {"file": "musicnn_fused.onnx", "sha256": sha(folder / "musicnn_fused.onnx")}
    hashed: list[Path] = []
    real = music_manifest.sha256_file
    monkeypatch.setattr(music_manifest, "sha256_file", lambda p: hashed.append(p) or real(p))
    for _ in range(3):
        assert music_manifest.verified_file(folder, entry) == folder / "musicnn_fused.onnx"
    assert len(hashed) == 1
    # Same size, new bytes: the mtime changes, so the file is hashed (and refused) again.
    (folder / "musicnn_fused.onnx").write_bytes(b"FUSEX")
    stat = os.stat(folder / "musicnn_fused.onnx")
    os.utime(folder / "musicnn_fused.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(ValueError, match="does not match"):
        music_manifest.verified_file(folder, entry)
