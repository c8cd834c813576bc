"""Assemble a model bundle: export every graph with parity checks, hash everything, write the manifest.

Kinds (the manifest's `kind`):
- "zero-shot": no ViML training. MiniLM text encoder + the musicnn music model, plus CLIP's frame and
  text towers when CLIP weights are given. Prompts and segment descriptions go through CLIP's text tower
  when present (the space CLIP frames live in), else through MiniLM (prompt-only search).
- "trained" / "demo": a ViML checkpoint's query and music towers on top of the same encoders ("demo"
  when the checkpoint was trained on the generated demo world).
The bundle is assembled in a hidden folder and renamed into place only when every check passed, so a
failed parity check or an interrupted build never leaves a half bundle behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.bundles.manifest import KINDS, BundleError, hash_files, write_manifest
from viml.engine.bundles.spec import AnalysisSpec, music_model_files
from viml.engine.bundles.store import bundles_dir, check_name
from viml.engine.music.manifest import model_folder
from viml.engine.segments import DEFAULT_FPS, DEFAULT_MIN_FRACTION, DEFAULT_SEGMENT_SECONDS
from viml.export_onnx.graphs import DEFAULT_TOLERANCE

log = logging.getLogger(__name__)

TOWERS_CHECKPOINT = "towers.safetensors"  # the trained towers' weights inside a trained/demo bundle


def build_bundle(
    name: str,
    clip: str | None = None,
    checkpoint: Path | None = None,
    kind: str | None = None,
    music_folder: Path | None = None,
    include_music: bool = True,
    quantize: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    trained_on: str | None = None,
    force: bool = False,
    output_dir: Path | None = None,
) -> Path:
    """Build bundle `name` into `output_dir` (default: models_dir()/bundles); returns its folder."""
    check_name(name)
    kind = kind or ("trained" if checkpoint else "zero-shot")
    if kind not in KINDS:
        raise UserFacingError(f"bundle kind must be one of {', '.join(KINDS)}")
    if kind != "zero-shot" and checkpoint is None:
        raise UserFacingError(f"a {kind} bundle needs a ViML checkpoint (--checkpoint PATH)")
    root = output_dir or bundles_dir()
    target = root / name
    if target.exists() and not force:
        raise BundleError(f"bundle {name!r} already exists in {root}; pass --force to replace it")
    staging = root / f".{name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        manifest = _assemble(
            staging,
            name,
            kind,
            clip,
            checkpoint,
            music_folder,
            include_music,
            quantize,
            tolerance,
            trained_on,
        )
        write_manifest(staging, manifest)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("bundle %s (%s) written to %s", name, kind, target)
    return target


def _assemble(
    folder: Path,
    name: str,
    kind: str,
    clip_spec: str | None,
    checkpoint: Path | None,
    music_folder: Path | None,
    include_music: bool,
    quantize: bool,
    tolerance: float,
    trained_on: str | None,
) -> dict[str, Any]:
    from viml.export_onnx.minilm import export_minilm

    models: dict[str, dict[str, Any]] = {"text_encoder": export_minilm(folder, tolerance)}
    manifest: dict[str, Any] = {"name": name, "kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    trained = _trained_analysis(checkpoint)
    preprocessing: dict[str, Any] = {
        "video": {
            "fps": trained.get("fps", DEFAULT_FPS),
            "segment_seconds": trained.get("segment_seconds", DEFAULT_SEGMENT_SECONDS),
            "min_fraction": DEFAULT_MIN_FRACTION,
            "frame_pooling": "mean of L2-normalised frame embeddings per segment",
        }
    }
    if clip_spec:
        from viml.export_onnx.clip import export_clip, image_preprocessing, load_clip

        clip = load_clip(clip_spec)
        models.update(export_clip(clip, folder, tolerance))
        preprocessing["image"] = image_preprocessing(clip)
        if quantize:
            _add_int8_frame_encoder(folder, models["frame_encoder"], clip.preprocessing.image_size)
    text_input = "clip_text_encoder" if clip_spec else "text_encoder"
    if checkpoint is not None:
        text_input = _add_towers(folder, models, Path(checkpoint), tolerance, manifest)
    if include_music:
        manifest["music_model"] = _copy_music_model(folder, music_folder)
        preprocessing["audio"] = manifest["music_model"].pop("front_end")
        manifest["tag_vocabularies"] = manifest["music_model"].pop("tag_vocabularies")
    video = preprocessing["video"]
    manifest["analysis"] = AnalysisSpec(
        music_model=manifest.get("music_model", {}).get("name", "musicnn"),
        music_model_files=music_model_files(
            hash_files(folder / "music" if include_music else model_folder())
        ),
        segment_seconds=float(video["segment_seconds"]),
        min_segment_fraction=float(video["min_fraction"]),
        fps=float(video["fps"]),
        tag_vocabularies=manifest.get("tag_vocabularies", {}),
    ).to_json()
    manifest.update(
        models=models,
        preprocessing=preprocessing,
        text_input=text_input,
        embedding_dims={role: entry["embed_dim"] for role, entry in models.items()},
        trained_on=trained_on or _default_trained_on(kind, clip_spec, manifest.pop("trained_on", None)),
        reads_pictures="frame_encoder" in models,
    )
    return manifest


def _trained_analysis(checkpoint: Path | None) -> dict[str, float]:
    """The segment rules a checkpoint's features were cut with ({} for older checkpoints or none)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="numpy") as handle:
        metadata = handle.metadata() or {}
    return {k: float(v) for k, v in json.loads(metadata.get("analysis", "{}")).items()}


def _add_int8_frame_encoder(folder: Path, entry: dict[str, Any], size: int) -> None:
    from viml.export_onnx.quantize import quantize_int8

    rng = np.random.default_rng(0)
    # Noise and smooth gradients: the check should not only see white noise, which no video resembles.
    noise = rng.standard_normal((4, 3, size, size)).astype(np.float32)
    ramp = np.linspace(-1.5, 1.5, size, dtype=np.float32)
    smooth = np.stack(
        [np.stack([ramp[None, :] * s + ramp[:, None] * (1 - s)] * 3) for s in (0.0, 0.3, 0.7, 1.0)]
    )
    variant = quantize_int8(
        folder / entry["file"], folder / "frame_encoder.int8.onnx", {"image": np.concatenate([noise, smooth])}
    )
    if variant:
        entry["variants"] = {"int8": variant}


def _add_towers(
    folder: Path, models: dict[str, Any], checkpoint: Path, tolerance: float, manifest: dict[str, Any]
) -> str:
    from viml.export_onnx.towers import export_towers
    from viml.training.model import load_checkpoint

    if not checkpoint.is_file():
        raise UserFacingError(f"ViML checkpoint not found: {checkpoint}")
    model, metadata = load_checkpoint(checkpoint)
    config = model.config
    text_input = (
        "text_encoder" if config.text_dim == models["text_encoder"]["embed_dim"] else "clip_text_encoder"
    )
    if metadata.get("text_encoder"):
        text_input = "text_encoder" if "minilm" in metadata["text_encoder"].lower() else "clip_text_encoder"
    frame = models.get("frame_encoder")
    if frame is None or frame["embed_dim"] != config.video_dim:
        given = "no CLIP weights were given" if frame is None else f"the given CLIP is {frame['embed_dim']}-d"
        raise UserFacingError(
            f"the checkpoint's video input is {config.video_dim}-d but {given}; pass the CLIP weights it "
            "was trained with (--clip NAME:TAG or NAME:/path/to/checkpoint)"
        )
    if text_input not in models or models[text_input]["embed_dim"] != config.text_dim:
        raise UserFacingError(
            f"no text encoder in this bundle gives the checkpoint's {config.text_dim}-d text input"
        )
    models.update(export_towers(model, folder, tolerance))
    manifest["temperature"] = config.temperature
    manifest["viml_config"] = json.loads(config.to_json())
    # The towers' torch weights travel with the bundle (safetensors, no pickle), hashed like every file:
    # `viml learn` fine-tunes from the bundle in use, and the ONNX graphs alone cannot be trained.
    shutil.copyfile(checkpoint, folder / TOWERS_CHECKPOINT)
    manifest["checkpoint"] = {"file": TOWERS_CHECKPOINT, "source": checkpoint.name, "metadata": metadata}
    if metadata.get("trained_on"):
        manifest["trained_on"] = metadata["trained_on"]
    return text_input


def _copy_music_model(folder: Path, music_folder: Path | None) -> dict[str, Any]:
    """Copy the converted musicnn folder (converting it first, offline, when needed) into `music/`."""
    if music_folder is None:
        from viml.export_onnx.musicnn import convert

        music_folder = convert()
    source_manifest = json.loads((Path(music_folder) / "manifest.json").read_text(encoding="utf-8"))
    shutil.copytree(music_folder, folder / "music", ignore=shutil.ignore_patterns(".*", "*.tmp"))
    entries = source_manifest["models"]
    return {
        "folder": "music",
        "name": source_manifest.get("name", "musicnn"),
        "models": sorted(entries),
        "embedding": source_manifest.get("embedding"),
        "embedding_dim": sum(int(e["outputs"]["penultimate"][1]) for e in entries.values()),
        "licence": source_manifest.get("licence"),
        "front_end": source_manifest["front_end"],
        "tag_vocabularies": {e["vocabulary"]: e["tags"] for e in entries.values()},
    }


def _default_trained_on(kind: str, clip_spec: str | None, towers: str | None) -> str:
    parts = [f"ViML towers: {towers}"] if towers else []
    parts.append("all-MiniLM-L6-v2: sentence-transformers training data (1B sentence pairs)")
    if clip_spec:
        parts.append(
            f"CLIP {clip_spec}: "
            + (
                "RANDOM weights, untrained"
                if clip_spec.endswith(":random")
                else "its pretrained image-text data"
            )
        )
    parts.append("musicnn: MagnaTagATune (MTT) and Million Song Dataset (MSD) tags")
    if kind == "zero-shot":
        parts.append("no ViML training (zero-shot)")
    return "; ".join(parts)
