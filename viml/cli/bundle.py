"""`viml bundle`: build, list, verify model bundles and choose the default one."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 70


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bundle",
        help="build, list and verify model bundles (ONNX models + manifest) and set the default",
        description=(
            "A model bundle is a folder of ONNX models plus manifest.json (preprocessing, tag vocabularies, "
            "sha256 of every file). The search, the catalog and the desktop app run on the default bundle, "
            "without torch."
        ),
    )
    actions = parser.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="export a bundle (needs the train extra: torch, open_clip, onnx)",
        description=(
            "Export every encoder to ONNX, check each graph against torch (refusing to write the bundle on a "
            "mismatch) and write the manifest. --zero-shot needs no ViML training and works offline: "
            "MiniLM prompts + the musicnn music model, plus CLIP frames/prompts when --clip is given. "
            "--checkpoint adds a trained ViML model's query and music towers."
        ),
    )
    build.add_argument(
        "name", nargs="?", help="bundle name (default: zero-shot, or the checkpoint's file name)"
    )
    build.add_argument(
        "--zero-shot", action="store_true", help="no ViML model: tag descriptions are the music side"
    )
    build.add_argument("--checkpoint", type=Path, help="trained ViML checkpoint (.safetensors)")
    build.add_argument(
        "--demo", action="store_true", help="mark a checkpoint trained on the generated demo world"
    )
    build.add_argument(
        "--clip",
        metavar="NAME:TAG",
        help="CLIP weights: e.g. ViT-B-32:openai (downloaded once), ViT-B-32:/path/to/checkpoint.bin, viml-tiny:random",
    )
    build.add_argument(
        "--music-folder", type=Path, help="converted musicnn folder (default: convert if needed)"
    )
    build.add_argument("--no-int8", action="store_true", help="skip the int8 frame encoder variant")
    build.add_argument("--trained-on", help="what the weights were trained on (recorded in the manifest)")
    build.add_argument("--default", action="store_true", help="make it the default bundle")
    build.add_argument("--force", action="store_true", help="replace an existing bundle of that name")
    build.set_defaults(func=run_build)

    listing = actions.add_parser("list", help="list installed bundles (* marks the default)")
    listing.set_defaults(func=run_list)

    verify = actions.add_parser(
        "verify", help="check a bundle's manifest and every file against their sha256"
    )
    verify.add_argument("name", nargs="?", help="bundle name or folder (default: the default bundle)")
    verify.set_defaults(func=run_verify)

    default = actions.add_parser("default", help="show or set the default bundle")
    default.add_argument("name", nargs="?", help="bundle to make the default")
    default.set_defaults(func=run_default)

    show = actions.add_parser("show", help="print a bundle's manifest summary")
    show.add_argument("name", nargs="?", help="bundle name or folder (default: the default bundle)")
    show.set_defaults(func=run_show)


def run_build(args: argparse.Namespace) -> int:
    from viml.core.errors import UserFacingError
    from viml.engine.bundles.store import set_default_bundle
    from viml.export_onnx.build import build_bundle

    if args.zero_shot == bool(args.checkpoint):
        raise UserFacingError("choose one: --zero-shot, or --checkpoint PATH for a trained ViML model")
    name = args.name or ("zero-shot" if args.zero_shot else args.checkpoint.stem)
    kind = "zero-shot" if args.zero_shot else ("demo" if args.demo else "trained")
    folder = build_bundle(
        name,
        clip=args.clip,
        checkpoint=args.checkpoint,
        kind=kind,
        music_folder=args.music_folder,
        quantize=not args.no_int8,
        trained_on=args.trained_on,
        force=args.force,
    )
    print(f"bundle {name!r} ({kind}) written to {folder}")
    if not args.clip:
        print("  no CLIP weights: this bundle answers prompts only; add --clip NAME:TAG to read video")
    if args.default:
        set_default_bundle(name)
        print(f"  {name!r} is now the default bundle")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from viml.engine.bundles.manifest import KIND_WORDS
    from viml.engine.bundles.store import bundles_dir, default_bundle_name, list_bundles

    infos = list_bundles()
    if not infos:
        print(f"no bundles in {bundles_dir()}; build one with `viml bundle build --zero-shot`")
        return 0
    default = default_bundle_name()
    for info in infos:
        mark = "*" if info.name == default else " "
        if info.manifest is None:
            print(f"{mark} {info.name:24} BROKEN: {info.problem}")
            continue
        m = info.manifest
        pictures = "video+prompt" if m.get("reads_pictures") else "prompt only"
        print(
            f"{mark} {info.name:24} {m['kind']:9} {pictures:12} {m['bundle_hash'][:12]}  {', '.join(sorted(m['models']))}"
        )
    active = next((i for i in infos if i.name == default and i.manifest), None)
    if active is None and default is None and sum(1 for i in infos if i.manifest) == 1:
        active = next(i for i in infos if i.manifest)  # the only bundle is used when none is chosen
    if active is not None:
        print(f"active: {active.name} ({active.kind}: {KIND_WORDS.get(active.kind, active.kind)})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from viml.engine.bundles.manifest import MANIFEST_HASH, read_manifest, verify_files
    from viml.engine.bundles.store import resolve_bundle

    folder = resolve_bundle(args.name)
    manifest = read_manifest(folder)  # refuses a malformed or hand-edited manifest (one line, exit 1)
    problems = verify_files(folder, manifest)
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(f"bundle {folder.name!r}: {len(problems)} problem(s); rebuild it")
        return 1
    print(
        f"bundle {folder.name!r}: all {len(manifest['files'])} files match (hash {manifest['bundle_hash'][:12]})"
    )
    if MANIFEST_HASH not in manifest:
        print(
            "  its manifest predates manifest hashes: its own content is not verified (rebuild to cover it)"
        )
    return 0


def run_default(args: argparse.Namespace) -> int:
    from viml.engine.bundles.store import default_bundle_name, set_default_bundle

    if args.name:
        folder = set_default_bundle(args.name)
        print(f"default bundle: {args.name} ({folder})")
    else:
        print(default_bundle_name() or "no default bundle set")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from viml.engine.bundles.manifest import read_manifest
    from viml.engine.bundles.store import resolve_bundle

    folder = resolve_bundle(args.name)
    m = read_manifest(folder)
    print(f"{m['name']} ({m['kind']}), format {m['format_version']}, hash {m['bundle_hash'][:16]}, {folder}")
    print(f"  trained on: {m.get('trained_on', '?')}")
    print(f"  prompts through: {m.get('text_input')}; reads pictures: {m.get('reads_pictures')}")
    for role, entry in sorted(m["models"].items()):
        parity = entry.get("parity", {})
        variants = ", ".join(
            f"{k} (cos {v['cosine_vs_float_min']:.4f})" for k, v in entry.get("variants", {}).items()
        )
        print(
            f"  {role:18} {entry['file']:24} dim {entry.get('embed_dim')}  "
            f"parity {parity.get('max_abs_diff', float('nan')):.2g} ≤ {parity.get('tolerance')}"
            + (f"  variants: {variants}" if variants else "")
        )
    if "music_model" in m:
        print(f"  music model: {m['music_model']['name']} {m['music_model']['models']}")
    return 0
