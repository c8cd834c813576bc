"""`viml train`: train ViML on a feature cache (resumable; safetensors checkpoints)."""

from __future__ import annotations

from pathlib import Path

from viml.cli._args import fraction, positive, positive_count, seed, whole

ORDER = 30


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the ViML model on a feature cache",
        description=(
            "Train ViML's video/text/fusion and music towers with InfoNCE (temperature 0.03, both directions) "
            "and text dropout. Re-running with the same --out resumes an interrupted run. Uses CUDA when present."
        ),
    )
    parser.add_argument("features", type=Path, help="feature cache folder (from `viml features`)")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints")
    parser.add_argument("--steps", type=positive_count, default=1500)
    parser.add_argument(
        "--batch-size", type=whole(2), default=64, help="clips per step, at least 2 (InfoNCE needs negatives)"
    )
    parser.add_argument("--lr", type=positive, default=5e-4, help="peak learning rate (AdamW)")
    parser.add_argument(
        "--model", default="viml-small", metavar="NAME",
        help="model size: a config in training/model_configs (viml-small, viml-base; default viml-small)",
    )  # fmt: skip
    parser.add_argument(
        "--text-dropout", type=fraction, default=0.8, help="probability of NULL text (default 0.8)"
    )
    parser.add_argument(
        "--train-text",
        default="tags",
        help="comma-separated text methods to train with (tags, data2text, prompt2text), or 'none' for video only",
    )
    parser.add_argument(
        "--window", type=positive_count, default=3, help="segments per training clip (default 3 = 30 s)"
    )
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.set_defaults(func=run)


def text_methods(value: str) -> list[str]:
    return [] if value.strip().lower() == "none" else [m.strip() for m in value.split(",") if m.strip()]


def run(args) -> int:
    from viml.core.errors import UserFacingError
    from viml.training.features import FeatureSet
    from viml.training.pipeline import model_config_for
    from viml.training.train import TrainConfig, train

    features = FeatureSet.load(args.features)
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        window_segments=args.window,
        text_methods=text_methods(args.train_text),
        seed=args.seed,
        device=args.device,
    )
    try:
        model_config = model_config_for(features, args.model, text_dropout=args.text_dropout)
    except ValueError as error:
        raise UserFacingError(str(error)) from error
    checkpoint = train(features, model_config, config, args.out, provenance=features.provenance)
    print(f"model written to {checkpoint}")
    return 0
