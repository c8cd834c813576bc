"""`viml demo`: the whole product path on the embedded demo world, offline, on CPU in a few minutes."""

from __future__ import annotations

from pathlib import Path

from viml.cli._args import positive_count, seed, whole

ORDER = 10
MIN_PIECES = 4  # two to train on (InfoNCE needs a negative), one to validate, one to test


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate the demo world, compute features, train ViML, evaluate it (start here)",
        description=(
            "Runs end to end with no internet: generates a world of music tracks and videos from hidden "
            "attributes, tags the music with the real musicnn taggers, encodes frames with a small RANDOMLY "
            "INITIALISED CLIP-style vision tower (no CLIP weights ship offline) and prompts with the real "
            "all-MiniLM-L6-v2, trains ViML on CPU and prints the paper's results table. Steps already done "
            "(world, features, training) are reused on the next run."
        ),
    )
    parser.add_argument("--folder", type=Path, help="where the demo keeps its data (default: VIML_HOME/demo)")
    parser.add_argument(
        "--pieces",
        type=whole(MIN_PIECES),
        default=240,
        help=f"music videos in the world, at least {MIN_PIECES} (default 240)",
    )
    parser.add_argument("--steps", type=positive_count, default=1200, help="training steps (default 1200)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.set_defaults(func=run)


def run(args) -> int:
    from viml.demo.run import DemoConfig, run_demo

    config = DemoConfig(pieces=args.pieces, steps=args.steps, seed=args.seed)
    print(run_demo(config, args.folder))
    return 0
