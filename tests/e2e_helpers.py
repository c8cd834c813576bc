"""Shared by the end-to-end tests: a tiny demo world, real bundles built by the CLI, the CLI in a child.

Bundles are built once per test process into a home of their own and then used by folder path, so every
test keeps its private VIML_HOME (conftest) and the tests of several modules share one build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from viml.demo.world.generate import World

VIML = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


def viml(*args: str, home: Path, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """`viml ARGS` in a child process with VIML_HOME=home (the product path: no test code loaded)."""
    env = {**os.environ, "VIML_HOME": str(home), "HF_HUB_OFFLINE": "1", "VIML_PROVIDER": "cpu"}
    done = subprocess.run([*VIML, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"viml {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def last_json(text: str) -> dict | list:
    lines = [line for line in text.splitlines() if line.startswith(("{", "["))]
    return (
        json.loads(text[text.index(lines[0]) :])
        if lines and lines[0].startswith("[")
        else json.loads(lines[-1])
    )


@cache
def _root() -> Path:
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="viml-e2e-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@cache
def world() -> World:
    """6 pieces of 8-20 s (some tracks have two 10 s segments, so best offsets can move)."""
    from viml.demo.world.generate import generate_world

    return generate_world(_root() / "world", pieces=6, seed=3, seconds=(8, 20), workers=1)


@cache
def home() -> Path:
    """A VIML_HOME with the real musicnn models converted (`viml convert-musicnn`)."""
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.musicnn import find_musicnn

    try:
        find_musicnn(download=False)
    except WeightsUnavailableError:
        pytest.skip("the musicnn 0.1.0 wheel is not available offline on this machine")
    folder = _root() / "home"
    viml("convert-musicnn", home=folder)
    return folder


@cache
def zero_shot_bundle() -> Path:
    """`viml bundle build --zero-shot`: real MiniLM + real musicnn, no CLIP (prompts only)."""
    viml("bundle", "build", "--zero-shot", "--no-int8", home=home())
    return home() / "models" / "bundles" / "zero-shot"


@cache
def demo_bundle() -> Path:
    """A tiny ViML checkpoint trained for a few steps on the world's real features (random tiny CLIP frames,
    MiniLM texts, musicnn music; `viml features`), exported with `viml export --clip viml-tiny:random --demo`.

    The model is tiny (width 32, one layer) so that training takes seconds; it sees every piece, so it
    learns which music goes with which picture in this world (what the test can then check)."""
    from viml.training.features import FeatureSet
    from viml.training.pipeline import model_config_for
    from viml.training.train import TrainConfig, train

    root = _root()
    viml(
        "features",
        str(world().root),
        "--out",
        str(root / "features"),
        "--clip",
        "viml-tiny:random",
        home=home(),
    )
    features = FeatureSet.load(root / "features")
    for item in features.items:
        item.split = "train"
    model = model_config_for(
        features, width=32, heads=2, layers=1, fusion_layers=1, embed_dim=32, dropout=0.0, text_dropout=0.5
    )
    config = TrainConfig(
        steps=80, batch_size=6, learning_rate=3e-3, warmup_steps=5, window_segments=1, device="cpu"
    )
    checkpoint = train(features, model, config, root / "run", progress=False, provenance=features.provenance)
    viml(
        "export", str(checkpoint), "--clip", "viml-tiny:random", "--demo", "--name", "demo", "--no-int8",
        home=home(),
    )  # fmt: skip
    return home() / "models" / "bundles" / "demo"
