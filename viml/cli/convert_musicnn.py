"""`viml convert-musicnn`: convert musicnn's TensorFlow checkpoints to the ONNX models the run time uses."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-musicnn",
        help="convert the pretrained musicnn taggers (MTT, MSD) to ONNX (needs the train extra)",
        description=(
            "Read the MTT_musicnn and MSD_musicnn TensorFlow checkpoints out of the musicnn 0.1.0 wheel "
            "(installed package, cached wheel, or `pip download`), rebuild them in torch, export ONNX "
            "and write a manifest (source sha256, ISC licence, tag names, front-end parameters). "
            "Needs torch + onnx, never TensorFlow. Does nothing when the models are already up to date."
        ),
    )
    parser.add_argument("--wheel", type=Path, help="musicnn wheel or unpacked folder to convert from")
    parser.add_argument("--output", type=Path, help="model folder (default: <VIML_HOME>/models/musicnn)")
    parser.add_argument("--force", action="store_true", help="convert again even if up to date")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from viml.export_onnx.musicnn import convert

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's exporter warns about constant folding it cannot do
        folder = convert(wheel=args.wheel, output=args.output, force=args.force)
    print(f"musicnn models ready in {folder}")
    return 0
