"""The demo: world → features → ViML training → evaluation, each step cached in a folder and reused."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from viml.engine.features import FeatureSet
from viml.engine.pipeline import DEMO_FRAME_ENCODER, Row, chance_row, format_table, train_and_evaluate
from viml.engine.train import TrainConfig

from viml.paths import viml_home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    pieces: int = 240
    seconds: tuple[float, float] = (20.0, 40.0)
    steps: int = 1200
    seed: int = 0
    clip: str = DEMO_FRAME_ENCODER

    @property
    def name(self) -> str:
        """Names the cached world/features/runs; the generator version is in it so that a new generator
        never reuses features of an old world."""
        from viml.engine.world.generate import GENERATOR_VERSION

        return f"n{self.pieces}-s{self.seed}-g{GENERATOR_VERSION}"


def ensure_world(folder: Path, config: DemoConfig):  # noqa: ANN201 (engine.world.World)
    from viml.engine.world.generate import GENERATOR_VERSION, WorldError, generate_world, load_world

    try:
        world = load_world(folder)
        if (
            not world.missing_files()
            and len(world.pieces) == config.pieces
            and world.seed == config.seed
            and world.version == GENERATOR_VERSION
        ):
            return world
    except WorldError:
        pass
    log.info("generating the demo world (%d pieces) in %s", config.pieces, folder)
    return generate_world(
        folder, pieces=config.pieces, seed=config.seed, seconds=config.seconds, overwrite=True
    )


def ensure_features(folder: Path, world, config: DemoConfig) -> FeatureSet:  # noqa: ANN001
    from viml.engine.extract import extract_features, world_pairs
    from viml.engine.pipeline import load_encoders
    from viml.export_onnx.musicnn import convert

    if (folder / "features.json").exists():
        return FeatureSet.load(folder)
    convert()  # the real musicnn taggers, converted once from the wheel (skipped when up to date)
    frame_encoder, text_encoder, music_model, provenance = load_encoders(config.clip)
    provenance["world"] = (
        f"demo world seed {world.seed}, {len(world.pieces)} pieces, generator v{world.version}"
    )
    features = extract_features(
        world_pairs(world), frame_encoder, text_encoder, music_model, seed=config.seed, provenance=provenance
    )
    features.save(folder)
    return features


def run_demo(config: DemoConfig, folder: Path | None = None) -> str:
    root = folder or viml_home() / "demo"
    started = time.perf_counter()
    world = ensure_world(root / f"world-{config.name}", config)
    features = ensure_features(root / f"features-{config.name}", world, config)
    train_config = TrainConfig(steps=config.steps, text_methods=["tags"], seed=config.seed)
    results = train_and_evaluate(
        features, root / f"run-{config.name}-tags", train_config, query_methods=(None, "tags", "heldout")
    )
    rows = [Row("chance", "-", "-", "-", chance_row(features))]
    rows += [Row("ViML", "tags", "0.8", method or "-", result) for method, result in results]
    test_count = len(features.split("test"))
    table = format_table(
        rows, f"Demo world: {test_count} test clips, pool N={rows[0].result.pool_size}, seed {config.seed}"
    )
    notes = [
        "",
        f"frame encoder: {features.provenance.get('frame_encoder')}",
        f"text encoder:  {features.provenance.get('text_encoder')}",
        f"music model:   {features.provenance.get('music_model')}",
        f"data: {root}   total time {time.perf_counter() - started:.0f} s",
    ]
    return table + "\n" + "\n".join(notes)
