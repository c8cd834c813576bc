"""`viml world`: generate or inspect the embedded demo world (music + videos from hidden attributes)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from viml.cli._args import number, positive_count, seed

ORDER = 80


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "world",
        help="generate or inspect the demo world of music tracks and videos",
        description=(
            "The demo world is a folder of generated music tracks (wav/flac/mp3/ogg/m4a) and small "
            "music videos whose content follows shared hidden attributes (style, tempo, mode, energy), "
            "with ground-truth tags and train/val/test splits in world.json. Deterministic for a seed."
        ),
    )
    commands = parser.add_subparsers(dest="world_command", metavar="ACTION")
    generate = commands.add_parser("generate", help="write a new world into a folder")
    generate.add_argument("out", help="output folder (new or empty)")
    generate.add_argument("--pieces", type=positive_count, default=300, help="number of pieces (default 300)")
    generate.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    generate.add_argument(
        "--seconds", type=number(1.0), nargs=2, default=(20.0, 40.0), metavar=("MIN", "MAX"),
        help="range of piece lengths in seconds (default 20 40)",
    )  # fmt: skip
    generate.add_argument(
        "--sample-rate", type=positive_count, default=24000, help="audio sample rate (default 24000)"
    )
    generate.add_argument(
        "--video-audio", action="store_true", help="put the music on the videos' sound track"
    )
    generate.add_argument(
        "--workers", type=positive_count, default=None, help="processes (default: CPU count)"
    )
    generate.add_argument("--force", action="store_true", help="replace a world already in OUT")
    generate.set_defaults(func=run_generate)
    info = commands.add_parser("info", help="summarise a world folder")
    info.add_argument("dir", help="world folder (holds world.json)")
    info.set_defaults(func=run_info)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_generate(args: argparse.Namespace) -> int:
    import time

    from viml.demo.world.generate import generate_world

    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            print(f"\rgenerated {done}/{total} pieces", end="\n" if done == total else "", file=sys.stderr)

    world = generate_world(
        args.out,
        pieces=args.pieces,
        seed=args.seed,
        seconds=tuple(args.seconds),
        sample_rate=args.sample_rate,
        video_audio=args.video_audio,
        workers=args.workers,
        overwrite=args.force,
        progress=progress,
    )
    print(f"wrote {len(world.pieces)} pieces to {world.root} in {time.perf_counter() - started:.1f} s")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from viml.demo.world.generate import load_world

    world = load_world(args.dir)
    pieces = world.pieces
    total = sum(piece.seconds for piece in pieces)
    print(f"world {world.root}  seed {world.seed}  generator v{world.version}")
    print(f"pieces {len(pieces)}  music {total / 60:.1f} min  audio {world.sample_rate} Hz")
    print(
        f"video {world.width}x{world.height} @ {world.fps} fps  sound track: {'yes' if world.video_audio else 'no'}"
    )
    splits = Counter(piece.split for piece in pieces)
    print("splits " + "  ".join(f"{name} {splits[name]}" for name in ("train", "val", "test")))
    styles = Counter(piece.attributes.style for piece in pieces)
    print("styles " + "  ".join(f"{name} {count}" for name, count in sorted(styles.items())))
    formats = Counter(piece.music.rsplit(".", 1)[-1] for piece in pieces)
    print("formats " + "  ".join(f"{name} {count}" for name, count in sorted(formats.items())))
    missing = world.missing_files()
    if missing:
        print(f"missing {len(missing)} files, e.g. {missing[0]}", file=sys.stderr)
        return 1
    return 0
