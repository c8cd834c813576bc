"""`viml convert-beatnet`: convert BeatNet's pretrained beat/downbeat CRNNs to the ONNX the run time uses."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 81


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-beatnet",
        help="convert BeatNet's pretrained beat/downbeat models (1, 2, 3) to ONNX (needs the train extra)",
        description=(
            "Read the three CRNN state dicts out of the BeatNet 1.1.3 wheel (VIML_BEATNET_WHEEL, installed "
            "package, cached wheel, or `pip download`), rebuild them in torch, export ONNX, check it "
            "against torch and write a manifest (source sha256, CC BY 4.0 licence and attribution, "
            "feature parameters). Needs torch + onnx, never madmom. Does nothing when up to date."
        ),
    )
    parser.add_argument("--wheel", type=Path, help="BeatNet wheel or unpacked folder to convert from")
    parser.add_argument("--output", type=Path, help="model folder (default: <VIML_HOME>/models/beatnet)")
    parser.add_argument("--force", action="store_true", help="convert again even if up to date")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.export_onnx.beatnet import convert

    folder = convert(wheel=args.wheel, output=args.output, force=args.force)
    print(f"BeatNet models ready in {folder}")
    return 0
