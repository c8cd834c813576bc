"""The demo: world → features → ViML training → evaluation, each step cached in a folder and reused."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from viml.core.paths import viml_home
from viml.training.features import FeatureSet
from viml.training.pipeline import DEMO_FRAME_ENCODER, Row, chance_row, format_table, train_and_evaluate
from viml.training.train import CHECKPOINT_FILE, TrainConfig

if TYPE_CHECKING:
    from viml.demo.world.generate import World

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
        from viml.demo.world.generate import GENERATOR_VERSION

        return f"n{self.pieces}-s{self.seed}-g{GENERATOR_VERSION}"


def ensure_world(folder: Path, config: DemoConfig) -> World:
    from viml.demo.world.generate import GENERATOR_VERSION, WorldError, generate_world, load_world

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


def ensure_features(folder: Path, world: World, config: DemoConfig) -> FeatureSet:
    from viml.export_onnx.beatnet import convert as convert_beatnet
    from viml.export_onnx.musicnn import convert
    from viml.training.extract import extract_features, world_pairs
    from viml.training.pipeline import load_encoders

    if (folder / "features.json").exists():
        return FeatureSet.load(folder)
    convert()  # the real musicnn taggers, converted once from the wheel (skipped when up to date)
    convert_beatnet()  # BeatNet's beat/downbeat CRNNs, likewise
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
    run_dir = root / f"run-{config.name}-tags"
    results = train_and_evaluate(features, run_dir, train_config, query_methods=(None, "tags", "heldout"))
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
    ]
    # The product path on the trained model: ONNX bundle, catalog scan, suggestions for test clips.
    ensure_demo_bundle(run_dir / CHECKPOINT_FILE, config.clip)
    product = suggest_for_test_clips(root / f"product-{config.name}", world, features)
    notes += [
        "",
        f"ONNX bundle '{DEMO_BUNDLE}' (kind: demo) exported from {run_dir / CHECKPOINT_FILE}",
        product,
    ]
    notes += ["", f"data: {root}   total time {time.perf_counter() - started:.0f} s"]
    return table + "\n" + "\n".join(notes)


DEMO_BUNDLE = "demo"


def ensure_demo_bundle(checkpoint: Path, clip: str) -> Path:
    """Export the trained demo model as the bundle "demo" (again only when the checkpoint is newer).

    It becomes the default bundle when none is set, so `viml suggest` and `viml app` work right away.
    """
    from viml.engine.bundles.store import bundles_dir, default_bundle_name, set_default_bundle
    from viml.export_onnx.build import build_bundle

    folder = bundles_dir() / DEMO_BUNDLE
    manifest = folder / "manifest.json"
    if not manifest.exists() or manifest.stat().st_mtime < checkpoint.stat().st_mtime:
        folder = build_bundle(DEMO_BUNDLE, clip=clip, checkpoint=checkpoint, kind="demo", force=True)
    if default_bundle_name() is None:
        set_default_bundle(DEMO_BUNDLE)
    return folder


def demo_library(root: Path, world: World, features: FeatureSet) -> Path:
    """The test split's music as a folder to scan (hard links: no copies), like a user's music folder."""
    library = root / "library"
    library.mkdir(parents=True, exist_ok=True)
    for piece in world.pieces:
        if piece.split != "test":
            continue
        source = world.music_path(piece)
        target = library / source.name
        if not target.exists():
            try:
                target.hardlink_to(source)
            except OSError:  # another file system: copy instead
                import shutil

                shutil.copy2(source, target)
    return library


def suggest_for_test_clips(root: Path, world: World, features: FeatureSet) -> str:
    """Scan the test music into a catalog with the demo bundle and suggest music for every test clip,
    exactly as `viml scan` and `viml suggest` do; report where each clip's own track ranks."""
    import numpy as np
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest

    library = demo_library(root, world, features)
    catalog_path = root / "catalog.sqlite"
    bundle = open_bundle(DEMO_BUNDLE)
    lines = [f"viml scan {library} --catalog {catalog_path} --bundle {DEMO_BUNDLE}"]
    tests = world.split("test")
    ranks, example = [], None
    with Catalog(catalog_path) as catalog:
        summary = scan(catalog, library, progress=False)
        searcher = Searcher(catalog, bundle)
        lines.append(
            f"  {summary.analysed} analysed, {summary.unchanged} unchanged, {len(summary.failures)} failed "
            f"({summary.audio_seconds:.0f} s of audio in {summary.seconds:.1f} s)"
        )
        for piece in tests:
            end = min(piece.seconds, 30.0)
            request = SuggestRequest(video=str(world.video_path(piece)), start=0.0, end=end, top=len(tests))
            results = searcher.suggest(request).suggestions
            own = world.music_path(piece).name
            ranks.append(next((r.rank for r in results if Path(r.path).name == own), len(tests)))
            if example is None:
                best = results[0]
                example = (
                    f"  e.g. viml suggest {world.video_path(piece).name} --in 0 --out {end:.0f}: top "
                    f"{Path(best.path).name} from {best.start:.0f} s (score {best.score:.2f}, tags "
                    f"{', '.join(t['tag'] for t in best.matched_tags[:4])}); own track ranks {ranks[-1]}"
                )
    ranks_array = np.asarray(ranks)
    lines.append(
        f"viml suggest on each of the {len(tests)} test clips (0-30 s, no prompt): own track median rank "
        f"{np.median(ranks_array):.1f} of {len(tests)} (chance {(len(tests) + 1) / 2:.1f}), in the top 5 for "
        f"{int((ranks_array <= 5).sum())}, top 10 for {int((ranks_array <= 10).sum())}"
    )
    lines.append(example or "")
    return "\n".join(lines)
