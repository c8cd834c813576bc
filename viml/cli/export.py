"""`viml export`: a trained ViML checkpoint → a model bundle (every encoder as ONNX, parity-checked)."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 71


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained checkpoint to a model bundle (needs the train extra)",
        description=(
            "Export the frame encoder (CLIP image tower), the text encoders (CLIP text tower, MiniLM), the "
            "music model and the ViML query and music towers to ONNX with dynamic batch and segment axes, "
            "check each against torch, and write them as a bundle with manifest.json. "
            "Same as `viml bundle build --checkpoint`."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="trained ViML checkpoint (.safetensors)")
    parser.add_argument("--name", help="bundle name (default: the checkpoint's file name)")
    parser.add_argument("--clip", metavar="NAME:TAG", help="the CLIP weights the model was trained with")
    parser.add_argument("--demo", action="store_true", help="the checkpoint was trained on the demo world")
    parser.add_argument("--trained-on", help="what the model was trained on (recorded in the manifest)")
    parser.add_argument(
        "--music-folder", type=Path, help="converted musicnn folder (default: convert if needed)"
    )
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 frame encoder variant")
    parser.add_argument("--default", action="store_true", help="make it the default bundle")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle of that name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.cli.bundle import run_build

    args.zero_shot = False
    args.name = args.name or args.checkpoint.stem
    return run_build(args)
