"""`viml integrations install blender|resolve`: copy an editor add-on where the editor finds it.

The add-ons are files shipped in viml/integrations/ (found beside this package, not imported: they run
in the editor's Python). Each gets a copy of viml_client.py, the standard-library client of `viml serve`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from viml.core.errors import UserFacingError

ORDER = 37
INTEGRATIONS = Path(__file__).resolve().parent.parent / "integrations"
CLIENT = INTEGRATIONS / "viml_client.py"
BLENDER_ADDON = INTEGRATIONS / "blender" / "viml_vse"
RESOLVE_SCRIPT = INTEGRATIONS / "resolve" / "ViML Music.py"
RESOLVE_MODULE = INTEGRATIONS / "resolve" / "viml_resolve.py"
ADDON_MARK = "VIML_ADDONS="
BLENDER_TIMEOUT = 120


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "integrations",
        help="install the editor add-ons (Blender VSE panel, DaVinci Resolve script)",
        description="Install an editor add-on that talks to `viml serve` (docs/sections/integrations.md).",
    )
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = commands.add_parser("install", help="install an add-on for the current user")
    install.add_argument("editor", choices=["blender", "resolve"])
    install.add_argument("--blender", default="blender", metavar="PATH", help="the blender program")
    install.add_argument("--target", type=Path, metavar="DIR",
                         help="install into DIR (Blender: its add-ons folder; Resolve: Scripts/Utility)")  # fmt: skip
    install.add_argument("--no-enable", action="store_true", help="Blender: copy only, do not enable it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.editor == "blender":
        target = args.target or blender_addons_dir(args.blender)
        installed = install_blender(target)
        if not args.no_enable:
            enable_in_blender(args.blender, target)
        print(f"installed the Blender add-on in {installed}" + ("" if args.no_enable else " (enabled)"))
        print("Start `viml serve`, then in the Sequencer: sidebar (N) > ViML.")
    else:
        installed = install_resolve(args.target or resolve_scripts_dir())
        print(f"installed the Resolve script as {installed}")
        print("Start `viml serve`, then in Resolve: Workspace > Scripts > ViML Music.")
    return 0


def _blender(program: str, expression: str, env: dict | None = None) -> str:
    found = shutil.which(program)
    if found is None:
        raise UserFacingError(f"{program}: Blender not found; give its program with --blender PATH")
    try:
        done = subprocess.run(
            [found, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", expression],
            capture_output=True, text=True, timeout=BLENDER_TIMEOUT, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UserFacingError(f"{program} did not answer within {BLENDER_TIMEOUT} s") from None
    if done.returncode != 0:
        raise UserFacingError(f"{program} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def blender_addons_dir(program: str) -> Path:
    """The user's add-ons folder, as that Blender says (BLENDER_USER_SCRIPTS honoured)."""
    out = _blender(
        program,
        f"import bpy; print({ADDON_MARK!r} + bpy.utils.user_resource('SCRIPTS', path='addons', create=True))",
    )
    for line in out.splitlines():
        if line.startswith(ADDON_MARK):
            return Path(line[len(ADDON_MARK) :])
    raise UserFacingError(f"{program} did not say where its add-ons folder is")


def install_blender(target: Path) -> Path:
    destination = target / BLENDER_ADDON.name
    target.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(BLENDER_ADDON, destination, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(CLIENT, destination / CLIENT.name)
    return destination


def enable_in_blender(program: str, target: Path) -> None:
    """Enable the add-on in the user's preferences (saved), as Edit > Preferences > Add-ons would."""
    _blender(
        program,
        f"import sys, addon_utils, bpy; sys.path.insert(0, {str(target)!r}); "
        f"addon_utils.enable({BLENDER_ADDON.name!r}, default_set=True, handle_error=None); "
        "bpy.ops.wm.save_userpref()",
    )


def resolve_scripts_dir() -> Path:
    """Resolve's per-user Workspace > Scripts > Utility folder (Blackmagic's documented locations)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        return base / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts" / "Utility"
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
        return base / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts" / "Utility"
    return Path.home() / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Utility"


def install_resolve(target: Path) -> Path:
    """The menu entry (ViML Music.py) plus its modules in a folder Resolve does not list (viml/)."""
    modules = target / "viml"
    modules.mkdir(parents=True, exist_ok=True)
    shutil.copy2(CLIENT, modules / CLIENT.name)
    shutil.copy2(RESOLVE_MODULE, modules / RESOLVE_MODULE.name)
    script = target / RESOLVE_SCRIPT.name
    text = RESOLVE_SCRIPT.read_text(encoding="utf-8")
    script.write_text(text.replace("MODULES = None", f"MODULES = {str(modules)!r}", 1), encoding="utf-8")
    return script
