"""`viml features`: compute the feature cache of a demo world (frames, music, texts) once."""

from __future__ import annotations

import json
from pathlib import Path

from viml.cli._args import seed

ORDER = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="compute per-segment video/music/text features of a world for training",
        description=(
            "Decode every video (frames at 6 fps, 10 s segments) and music track of a world folder, encode "
            "frames with a CLIP image tower, run the music model (tags + embeddings), synthesise texts from "
            "the tags and embed them. Writes features.safetensors + features.json into OUT."
        ),
    )
    parser.add_argument("world", type=Path, help="world folder (from `viml world generate`)")
    parser.add_argument("--out", type=Path, required=True, help="feature cache folder to write")
    parser.add_argument(
        "--clip",
        default="viml-tiny:random",
        help="frame encoder NAME:TAG or NAME:/path/to/checkpoint (default: the demo's random tiny tower)",
    )
    parser.add_argument(
        "--text-encoder", choices=("minilm", "clip"), default="minilm", help="prompt encoder (default minilm)"
    )
    parser.add_argument("--download", action="store_true", help="allow downloading CLIP weights")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the text synthesis")
    parser.set_defaults(func=run)


def run(args) -> int:
    from viml.demo.world.generate import load_world
    from viml.training.extract import extract_features, world_pairs
    from viml.training.features import describe
    from viml.training.pipeline import load_encoders

    world = load_world(args.world)
    frame_encoder, text_encoder, music_model, provenance = load_encoders(
        args.clip, args.text_encoder, args.download
    )
    provenance["world"] = f"{args.world.resolve()} (seed {world.seed}, generator v{world.version})"
    features = extract_features(
        world_pairs(world), frame_encoder, text_encoder, music_model, seed=args.seed, provenance=provenance
    )
    features.save(args.out)
    print(json.dumps(describe(features), indent=2))
    return 0
