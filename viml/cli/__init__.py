"""The `viml` command: one module per subcommand (beets-style), found in this package.

Each command module `viml/cli/<name>.py` defines `register(subparsers)` that adds its parser and sets
`func`, and an integer `ORDER` that places it in `viml --help`. Modules import heavy dependencies
(torch, onnxruntime, Qt) inside their `run` function so `viml --help` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys

from viml.core.errors import UserFacingError


def command_modules() -> list:
    modules = [
        importlib.import_module(f"viml.cli.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda module: (getattr(module, "ORDER", 100), module.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viml",
        description="Find music for video: rank your own music folder for a clip and a prompt.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries (onnx, open_clip, sentence-transformers) log chattily at INFO: show only their warnings.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("viml").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserFacingError as error:
        print(f"viml: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `viml tags | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # a full or read-only disk, a folder gone mid-run: one line, no traceback
        hint = "; free space and try again" if error.errno in DISK_FULL else ""
        print(f"viml: error: {describe_os_error(error)}{hint}", file=sys.stderr)
        return 1


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def describe_os_error(error: OSError) -> str:
    """'No space left on device: /x/y' from an OSError."""
    names = " -> ".join(os.fsdecode(n) for n in (error.filename, error.filename2) if n is not None)
    return f"{error.strerror or error}" + (f": {names}" if names else "")
