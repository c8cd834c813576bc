"""Convert musicnn's TensorFlow checkpoints (read out of its PyPI wheel) to torch and ONNX.

Needs torch and onnx (the `train` extra) but neither TensorFlow nor musicnn's code: the wheel is a zip,
the checkpoints are read by `tf_checkpoint`, the tag names are parsed (not executed) from
`configuration.py`. Output: `<models_dir>/musicnn/{MTT,MSD}_musicnn.onnx` + `manifest.json`.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from viml.engine.music.frontend import FRONT_END
from viml.engine.music.manifest import (
    CONVERTER_VERSION,
    MANIFEST_NAME,
    MODEL_NAMES,
    MUSICNN_VERSION,
    model_folder,
    sha256_file,
)
from viml.export_onnx.wheels import WheelFiles, find_wheel, installed_root

log = logging.getLogger(__name__)

WHEEL_NAME = f"musicnn-{MUSICNN_VERSION}-py3-none-any.whl"
# Largest difference tolerated between torch and ONNX outputs at conversion time.
_EXPORT_TOLERANCE = 1e-4


class WheelSource(WheelFiles):
    """Files of the musicnn distribution, from a wheel zip or an installed package folder."""

    package = "musicnn"
    version = MUSICNN_VERSION

    def licence(self) -> str:
        return self.licence_text(("LICENSE.md",), "", "ISC")

    def labels(self) -> dict[str, list[str]]:
        """MTT_LABELS / MSD_LABELS from configuration.py, parsed as literals (never executed)."""
        tree = ast.parse(self.read("musicnn/configuration.py").decode("utf-8"))
        labels = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name.endswith("_LABELS"):
                    labels[name.removesuffix("_LABELS")] = list(ast.literal_eval(node.value))
        return labels


def find_musicnn(explicit: Path | None = None, download: bool = True) -> WheelSource:
    """The musicnn files: an explicit wheel/folder, the installed package, a cached wheel, or pip download."""
    installed = installed_root("musicnn", "MTT_musicnn/.index")
    return WheelSource(
        find_wheel("musicnn", MUSICNN_VERSION, "VIML_MUSICNN_WHEEL", installed, explicit, download)
    )


def load_checkpoint(source: WheelSource, model_name: str) -> dict[str, np.ndarray]:
    from viml.export_onnx.tf_checkpoint import read_tensors

    index = source.read(f"musicnn/{model_name}/.index")
    data = source.read(f"musicnn/{model_name}/.data-00000-of-00001")
    return read_tensors(index, data)


def _export_onnx(model, path: Path) -> None:
    import torch

    example = torch.zeros(2, FRONT_END.patch_frames, FRONT_END.n_mels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-folding notes from the TorchScript exporter
        _export(torch, model, example, path)


def _export(torch, model, example, path: Path) -> None:
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["patches"],
        output_names=["probabilities", "penultimate"],
        dynamic_axes={"patches": {0: "batch"}, "probabilities": {0: "batch"}, "penultimate": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


FUSED_NAME = "musicnn_fused.onnx"
FUSED_OUTPUTS = ("MTT_probabilities", "MTT_penultimate", "MSD_probabilities", "MSD_penultimate")


def _export_fused(models: list, path: Path) -> float:
    """Export both taggers as one graph sharing the front end; returns max abs diff vs the separate models."""
    import onnxruntime
    import torch
    from viml.export_onnx.musicnn_fused import FusedMusicnn

    fused = FusedMusicnn(models, FRONT_END.patch_frames).eval()
    example = torch.zeros(2, FRONT_END.patch_frames, FRONT_END.n_mels)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            fused,
            (example,),
            str(path),
            input_names=["patches"],
            output_names=list(FUSED_OUTPUTS),
            dynamic_axes={"patches": {0: "batch"}, **{name: {0: "batch"} for name in FUSED_OUTPUTS}},
            opset_version=17,
            dynamo=False,
        )
    patches = np.random.default_rng(0).uniform(0, 3, (3, FRONT_END.patch_frames, FRONT_END.n_mels))
    patches = patches.astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for model in models for t in model(torch.from_numpy(patches))]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"patches": patches})
    return float(max(np.abs(a - e).max() for a, e in zip(actual, expected, strict=True)))


def _check_onnx(model, path: Path) -> float:
    """Max abs difference between torch and onnxruntime on a few random log-mel patches."""
    import onnxruntime
    import torch

    patches = np.random.default_rng(0).uniform(0, 3, (3, FRONT_END.patch_frames, FRONT_END.n_mels))
    patches = patches.astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(patches))]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"patches": patches})
    return float(max(np.abs(a - e).max() for a, e in zip(actual, expected, strict=True)))


def _up_to_date(folder: Path, source_info: dict) -> bool:
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if manifest.get("converter_version") != CONVERTER_VERSION:
        return False
    if (
        source_info.get("wheel_sha256")
        and manifest["source"].get("wheel_sha256") != source_info["wheel_sha256"]
    ):
        return False
    if "fused" not in manifest:
        return False
    for entry in [*manifest.get("models", {}).values(), manifest["fused"]]:
        onnx_path = folder / entry["file"]
        if not onnx_path.exists() or sha256_file(onnx_path) != entry["sha256"]:
            return False
    return set(manifest.get("models", {})) == set(MODEL_NAMES)


def convert(wheel: Path | None = None, output: Path | None = None, force: bool = False) -> Path:
    """Convert MTT_musicnn and MSD_musicnn to ONNX; returns the model folder. Skips if up to date."""
    source = find_musicnn(wheel)
    folder = output or model_folder()
    source_info = source.describe()
    if not force and _up_to_date(folder, source_info):
        log.info("musicnn models in %s are up to date", folder)
        return folder
    import torch  # only now: checking an up-to-date folder stays fast
    from viml.export_onnx.musicnn_torch import from_tf_tensors

    labels = source.labels()
    folder.mkdir(parents=True, exist_ok=True)
    models, torch_models = {}, []
    with tempfile.TemporaryDirectory(dir=folder) as staging:
        for name in MODEL_NAMES:
            vocabulary = name.split("_")[0]
            model = from_tf_tensors(load_checkpoint(source, name))
            torch_models.append(model)
            staged = Path(staging) / f"{name}.onnx"
            with torch.no_grad():
                _export_onnx(model, staged)
            difference = _check_onnx(model, staged)
            if difference > _EXPORT_TOLERANCE:
                raise RuntimeError(f"{name}: ONNX differs from torch by {difference:.2e}")
            validation = source.read(f"musicnn/{name}/experiment.result").decode("utf-8", "replace").strip()
            models[name] = {
                "file": f"{name}.onnx",
                "sha256": sha256_file(staged),
                "vocabulary": vocabulary,
                "tags": labels[vocabulary],
                "inputs": {"patches": ["batch", FRONT_END.patch_frames, FRONT_END.n_mels]},
                "outputs": {
                    "probabilities": ["batch", len(labels[vocabulary])],
                    "penultimate": ["batch", 200],
                },
                "parameters": int(sum(p.numel() for p in model.parameters())),
                "onnx_vs_torch_max_abs_difference": difference,
                "validation_result": validation,
            }
            log.info("converted %s (ONNX vs torch max diff %.1e)", name, difference)
        fused_difference = _export_fused(torch_models, Path(staging) / FUSED_NAME)
        if fused_difference > _EXPORT_TOLERANCE:
            raise RuntimeError(f"fused graph differs from the separate models by {fused_difference:.2e}")
        fused = {
            "file": FUSED_NAME,
            "sha256": sha256_file(Path(staging) / FUSED_NAME),
            "models": list(MODEL_NAMES),
            "outputs": list(FUSED_OUTPUTS),
            "max_abs_difference_vs_separate": fused_difference,
        }
        for file in [f"{name}.onnx" for name in MODEL_NAMES] + [FUSED_NAME]:
            os.replace(Path(staging) / file, folder / file)
    manifest = {
        "name": "musicnn",
        "converter_version": CONVERTER_VERSION,
        "source": source_info,
        "licence": "ISC",
        "licence_text": source.licence(),
        "front_end": FRONT_END.as_dict(),
        "embedding": "mean over a segment's patches of the 200-d 'penultimate' layer, MTT then MSD",
        "models": models,
        # Both taggers in one graph sharing the front-end convolutions (what the run time loads).
        "fused": fused,
    }
    (folder / "LICENSE-musicnn.md").write_text(manifest["licence_text"] + "\n")
    temporary = folder / (MANIFEST_NAME + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, folder / MANIFEST_NAME)
    return folder
