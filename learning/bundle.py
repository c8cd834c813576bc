"""The learned bundle: the start bundle's encoders with fine-tuned towers, its manifest, and whether it may
become the default.

The new bundle keeps every encoder file of the bundle it started from (the features were computed with
them: the frame encoder and its int8 variant, the text encoders, the music model, the tokenizers, hard
links where the file system allows) and gets new towers exported with the usual parity checks
(`export_onnx.towers`), their torch weights (`towers.safetensors`, what the next `viml learn` starts
from), kind "trained", and a `learned` section: the pairs and projects it learned from, the start
bundle, and the held-out metrics of both. Like `viml bundle build`, it is assembled in a hidden folder and
renamed into place only when every check passed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viml.core.errors import UserFacingError
from viml.engine.bundles.manifest import MANIFEST_HASH, BundleError, read_manifest, write_manifest
from viml.engine.bundles.store import bundles_dir, check_name
from viml.export_onnx.build import TOWERS_CHECKPOINT
from viml.export_onnx.graphs import DEFAULT_TOLERANCE

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.training.metrics import RetrievalResult

log = logging.getLogger(__name__)

TOWER_ROLES = ("query_tower", "music_tower")
# Keys write_manifest fills in again for the new folder.
_RECOMPUTED = ("files", "bundle_hash", MANIFEST_HASH, "format_version")
_ZERO_SHOT_NOTE = "no ViML training (zero-shot)"


def start_checkpoint(bundle: RuntimeBundle) -> Path | None:
    """The torch weights of the bundle's towers (verified with the bundle's files), None for a bundle
    without towers (zero-shot: learning starts from a fresh model)."""
    if bundle.towers is None:
        return None
    relative = (bundle.manifest.get("checkpoint") or {}).get("file")
    if not relative or relative not in bundle.manifest["files"]:
        raise UserFacingError(
            f"bundle {bundle.name!r} keeps no torch weights of its towers (it was built before bundles kept "
            "them), so it cannot be fine-tuned: rebuild it (`viml demo`, or `viml export CHECKPOINT`), or "
            "pass --fresh to train new towers on its encoders"
        )
    return bundle.file(relative)


def trained_on_text(pairs: int, projects: int, base: RuntimeBundle, fresh: bool, model_name: str) -> str:
    """What the manifest says the bundle was trained on: "trained on N pairs from M of your projects"."""
    head = f"ViML towers: trained on {pairs} pairs from {projects} of your projects"
    head += (
        f", starting from a fresh {model_name} model" if fresh else f", fine-tuned from bundle {base.name!r}"
    )
    encoders = [
        part
        for part in str(base.manifest.get("trained_on", "")).split("; ")
        if part and not part.startswith("ViML towers:") and part != _ZERO_SHOT_NOTE
    ]
    return "; ".join([head, *encoders])


def export_learned(
    base: RuntimeBundle,
    checkpoint: Path,
    name: str,
    text_role: str,
    trained_on: str,
    learned: dict[str, Any],
    output_dir: Path | None = None,
    force: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Path:
    """Write bundle `name` (into `output_dir`, default the bundles folder); returns its folder."""
    from viml.export_onnx.towers import export_towers
    from viml.training.model import load_checkpoint

    check_name(name)
    root = Path(output_dir) if output_dir is not None else bundles_dir()
    target = root / name
    if target.exists() and not force:
        raise BundleError(
            f"bundle {name!r} already exists in {root}; choose another --out NAME or pass --force"
        )
    if target.resolve() == base.folder.resolve():
        raise BundleError(f"--out {name!r} is the bundle learning started from; choose another name")
    model, metadata = load_checkpoint(checkpoint)
    config = model.config
    _check_inputs(base, text_role, config.video_dim, config.text_dim)
    staging = root / f".{name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        models = _copy_encoders(base, staging)
        models.update(export_towers(model, staging, tolerance))
        shutil.copyfile(checkpoint, staging / TOWERS_CHECKPOINT)
        manifest = {key: value for key, value in base.manifest.items() if key not in _RECOMPUTED}
        manifest.update(
            name=name,
            kind="trained",
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            models=models,
            text_input=text_role,
            embedding_dims={role: entry["embed_dim"] for role, entry in models.items()},
            temperature=config.temperature,
            viml_config=json.loads(config.to_json()),
            checkpoint={"file": TOWERS_CHECKPOINT, "source": checkpoint.name, "metadata": metadata},
            trained_on=trained_on,
            learned=learned,
        )
        write_manifest(staging, manifest)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("learned bundle %s written to %s", name, target)
    return target


def record_evaluation(folder: Path, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Add the held-out metrics to the bundle's `learned` section (the files do not change)."""
    manifest = read_manifest(folder)
    manifest.setdefault("learned", {})["held-out"] = evaluation
    return write_manifest(folder, manifest)


def refusal(new: RetrievalResult, base: RetrievalResult, base_name: str) -> str | None:
    """Why the new bundle must not become the default (None: it may): it does worse than its start on the
    held-out edits by either headline figure. A better median rank does not excuse fewer hits in the top
    10, which is what an editor sees (measured on the demo world: median rank 78.5 -> 52.5 while Recall@10
    fell 13.2% -> 2.9%), nor the other way round."""
    if new.median_rank > base.median_rank:
        return (
            f"it ranks the held-out edits' music lower than bundle {base_name!r} did (median rank "
            f"{new.median_rank:g} vs {base.median_rank:g})"
        )
    if new.recall[10] < base.recall[10]:
        return (
            f"it finds fewer held-out edits' music in its top 10 than bundle {base_name!r} "
            f"({new.recall[10]:.1f}% vs {base.recall[10]:.1f}%; median rank {new.median_rank:g} vs "
            f"{base.median_rank:g})"
        )
    return None


def _check_inputs(base: RuntimeBundle, text_role: str, video_dim: int, text_dim: int) -> None:
    frame = base.models.get("frame_encoder")
    text = base.models.get(text_role)
    if (
        frame is None
        or int(frame["embed_dim"]) != video_dim
        or text is None
        or int(text["embed_dim"]) != text_dim
    ):
        raise UserFacingError(
            f"the trained towers read {video_dim}-d frames and {text_dim}-d text, which bundle "
            f"{base.name!r}'s encoders do not give; learn again from this bundle"
        )


def _copy_encoders(base: RuntimeBundle, staging: Path) -> dict[str, dict[str, Any]]:
    """Every hashed file of the base except its towers and their weights; their model entries."""
    towers = {base.models[role]["file"] for role in TOWER_ROLES if role in base.models}
    towers.add(TOWERS_CHECKPOINT)
    for relative in base.manifest["files"]:
        if relative in towers:
            continue
        source, destination = base.file(relative), staging / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)  # bundles are never changed in place, so sharing the file is safe
        except OSError:
            shutil.copy2(source, destination)
    return {role: entry for role, entry in base.models.items() if role not in TOWER_ROLES}
