"""The end-to-end training path shared by `viml features/train/eval/demo` and `bench/retrieval.py`:
world → feature cache → trained ViML → evaluation rows. Torch side (the `train` extra).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from viml.training.evaluate import EvalConfig, evaluate
from viml.training.features import FeatureSet
from viml.training.metrics import RetrievalResult, chance
from viml.training.model import ViMLConfig, load_checkpoint
from viml.training.train import TrainConfig, train

DEFAULT_MODEL_CONFIG = "viml-small"  # training/model_configs/viml-small.json: what CPU training here uses

log = logging.getLogger(__name__)

DEMO_FRAME_ENCODER = "viml-tiny:random"


def load_encoders(
    clip_spec: str = DEMO_FRAME_ENCODER, text_encoder: str = "minilm", allow_download: bool = False
):
    """(frame encoder, text encoder, music model, provenance) for feature extraction."""
    from viml.engine.music.runtime import MusicModel
    from viml.training.encoders.clip import ClipEncoder, ClipSpec
    from viml.training.encoders.text import ClipTextEncoder, MiniLMTextEncoder

    spec = ClipSpec.parse(clip_spec)
    frame_encoder = ClipEncoder(spec, allow_download=allow_download)
    if text_encoder == "clip":
        if spec.is_random:
            raise ValueError("a random CLIP text tower cannot read prompts; use --text-encoder minilm")
        prompts = ClipTextEncoder(frame_encoder)
    elif text_encoder == "minilm":
        prompts = MiniLMTextEncoder()
    else:
        raise ValueError(f"unknown text encoder {text_encoder!r} (choose clip or minilm)")
    music_model = MusicModel.load()
    provenance = {
        "frame_encoder": spec.describe(),
        "frame_encoder_spec": str(spec),
        "text_encoder": prompts.name,
        "music_model": "musicnn MTT_musicnn + MSD_musicnn (converted from the musicnn 0.1.0 wheel, ISC); "
        "embedding = per-segment mean of both 200-d penultimate layers",
    }
    return frame_encoder, prompts, music_model, provenance


def model_config_for(features: FeatureSet, name: str = DEFAULT_MODEL_CONFIG, **overrides) -> ViMLConfig:
    """The named model size (training/model_configs/NAME.json) with the feature set's input dims."""
    return ViMLConfig.named(
        name,
        video_dim=features.video_dim,
        text_dim=features.text_dim,
        music_dim=features.music_dim,
        **overrides,
    )


@dataclass(frozen=True)
class Row:
    name: str
    train_text: str
    dropout: str
    query_text: str
    result: RetrievalResult


def train_and_evaluate(
    features: FeatureSet,
    run_dir: Path,
    train_config: TrainConfig,
    model_overrides: dict | None = None,
    query_methods: tuple[str | None, ...] = (None,),
    pool_size: int = 2000,
    split: str = "test",
    progress: bool = True,
) -> list[tuple[str | None, RetrievalResult]]:
    """Train (or resume) one model into `run_dir`, then evaluate it with each query text method."""
    config = model_config_for(features, **(model_overrides or {}))
    checkpoint = train(
        features, config, train_config, run_dir, progress=progress, provenance=features.provenance
    )
    model, _ = load_checkpoint(checkpoint)
    items = features.split(split)
    window = train_config.window_segments
    return [
        (
            method,
            evaluate(
                model, items, EvalConfig(pool_size=pool_size, window_segments=window, text_method=method)
            ),
        )
        for method in query_methods
    ]


def chance_row(features: FeatureSet, pool_size: int = 2000, split: str = "test") -> RetrievalResult:
    return chance(min(pool_size, len(features.split(split))))


def format_table(rows: list[Row], title: str) -> str:
    header = f"{'method':<34} {'train text':<11} {'dropout':<8} {'query text':<11} {'MedR':>6} {'R@1':>6} {'R@5':>6} {'R@10':>6}"
    lines = [title, header, "-" * len(header)]
    for row in rows:
        r = row.result
        lines.append(
            f"{row.name:<34} {row.train_text:<11} {row.dropout:<8} {row.query_text:<11} {r.median_rank:>6.1f} "
            f"{r.recall[1]:>6.2f} {r.recall[5]:>6.2f} {r.recall[10]:>6.2f}"
        )
    return "\n".join(lines)
