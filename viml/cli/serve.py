"""`viml serve`: the search as a local HTTP service for editor panels (docs/sections/service.md)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from viml.cli._args import positive_count
from viml.cli.scan import add_catalog_arguments
from viml.core.errors import UserFacingError

ORDER = 36


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve suggestions to editor panels (Blender, Resolve) on 127.0.0.1",
        description=(
            "An HTTP JSON API on this machine's loopback interface only: suggest, similar, fitted "
            "excerpts and previews as WAV, status. Every request needs the per-user token "
            "(created on first start in a file only you can read; --print-token shows it)."
        ),
    )
    add_catalog_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (127.0.0.1 or ::1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8765; 0: any free port)")
    parser.add_argument("--timeout", type=positive_count, default=120, metavar="S",
                        help="a request's time-out in seconds (default 120)")  # fmt: skip
    parser.add_argument("--max-upload-mb", type=positive_count, default=64, metavar="MB",
                        help="largest uploaded still or clip (default 64 MB)")  # fmt: skip
    parser.add_argument("--print-token", action="store_true", help="print the token (and its file) and exit")
    parser.add_argument(
        "--openapi",
        type=Path,
        metavar="PATH",
        help="write the OpenAPI schema (.json) or its docs part (.md) and exit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.search.service.tokens import ensure_token, token_path

    if args.print_token:
        token = ensure_token()
        print(f"{token}\n(from {token_path()})")
        return 0
    if args.openapi:
        from viml.search.service.app import write_openapi

        write_openapi(args.openapi)
        return 0
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search.service.server import DEFAULT_PORT, loopback_address, serve
    from viml.search.service.work import ServiceLimits

    loopback_address(args.host)  # refused before any model is opened
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UserFacingError(f"--port must be 0..65535, got {args.port}")
    with Catalog(args.catalog, must_exist=True) as catalog:
        path = catalog.path
    limits = ServiceLimits(max_upload_bytes=args.max_upload_mb << 20, timeout_s=float(args.timeout))
    bundle = open_bundle(args.bundle)
    ensure_token()

    def ready(url: str) -> None:
        print(f"viml serve: {url} (bundle {bundle.name}, catalog {path}); token in {token_path()}",
              file=sys.stderr, flush=True)  # fmt: skip

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on SIGINT/SIGTERM by itself
        serve(path, bundle, args.host, DEFAULT_PORT if args.port is None else args.port, limits, ready)
    return 0
