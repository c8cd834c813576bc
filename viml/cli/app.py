"""`viml app`: the desktop window (library, clip with in/out, prompt, results, audition, drag-out)."""

from __future__ import annotations

import argparse

from viml.cli._args import output_file
from viml.cli.suggest import parse_time

ORDER = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app",
        help="open the desktop app",
        description=(
            "Open the ViML window: add music folders, open a clip and set in/out (I/O keys), type a prompt, "
            "audition suggestions against the picture and drag them into your editor. With --screenshot "
            "the window renders offscreen, waits until idle, saves a PNG and exits."
        ),
    )
    parser.add_argument("video", nargs="?", help="video clip to open")
    parser.add_argument("--in", dest="in_point", type=parse_time, metavar="SECONDS", help="clip in point")
    parser.add_argument("--out", dest="out_point", type=parse_time, metavar="SECONDS", help="clip out point")
    parser.add_argument("--prompt", help="start with this prompt")
    parser.add_argument("--catalog", metavar="PATH", help="catalog database (remembered)")
    parser.add_argument("--bundle", metavar="PATH", help="model bundle name or folder (remembered)")
    parser.add_argument(
        "--screenshot", type=output_file, metavar="PNG", help="save a screenshot once idle and exit"
    )
    parser.add_argument(
        "--state", choices=("main", "batch-tag"), default="main", help="what --screenshot shows"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.desktop.app import run as run_app

    return run_app(
        catalog=args.catalog,
        bundle=args.bundle,
        video=args.video,
        in_point=args.in_point,
        out_point=args.out_point,
        prompt=args.prompt,
        screenshot=args.screenshot,
        state=args.state,
    )
