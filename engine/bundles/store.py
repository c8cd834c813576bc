"""Where bundles live (`models_dir()/bundles/<name>/`) and which one is the default (settings.json)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viml.core.paths import models_dir
from viml.core.settings import get_setting, set_setting
from viml.engine.bundles.manifest import BundleError, read_manifest

DEFAULT_BUNDLE_KEY = "default_bundle"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class BundleInfo:
    name: str
    path: Path
    manifest: dict[str, Any] | None  # None when the folder holds no readable manifest
    problem: str | None = None

    @property
    def kind(self) -> str:
        return self.manifest["kind"] if self.manifest else "?"


def bundles_dir() -> Path:
    path = models_dir() / "bundles"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BundleError(f"bad bundle name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


def list_bundles() -> list[BundleInfo]:
    infos = []
    for folder in sorted(path for path in bundles_dir().iterdir() if path.is_dir()):
        if folder.name.startswith("."):
            continue  # half-built bundles are assembled in hidden folders
        try:
            infos.append(BundleInfo(folder.name, folder, read_manifest(folder)))
        except BundleError as error:
            infos.append(BundleInfo(folder.name, folder, None, str(error)))
    return infos


def resolve_bundle(name_or_path: str | Path | None = None) -> Path:
    """A bundle folder from a name, a path, or (None) the default; a clear error if there is none."""
    if name_or_path is None:
        name_or_path = default_bundle_name()
        if name_or_path is None:
            available = [info.name for info in list_bundles() if info.manifest]
            if len(available) == 1:
                return bundles_dir() / available[0]
            hint = f" (installed: {', '.join(available)})" if available else ""
            raise BundleError(
                "no default model bundle: build one with `viml bundle build --zero-shot` "
                f"or choose one with `viml bundle default NAME`{hint}"
            )
    text = str(name_or_path)
    installed = bundles_dir() / text
    # A bare name is an installed bundle's first: a folder of that name in the working directory (say
    # ./demo in a checkout) must not shadow it. A path (a separator, ~, . or absolute) is a folder.
    if os.sep not in text and not text.startswith((".", "~")) and installed.is_dir():
        return installed
    candidate = Path(text).expanduser()
    if candidate.is_dir():
        return candidate
    raise BundleError(f"no bundle named {text!r} in {bundles_dir()} (see `viml bundle list`)")


def default_bundle_name() -> str | None:
    return get_setting(DEFAULT_BUNDLE_KEY)


def set_default_bundle(name: str) -> Path:
    folder = resolve_bundle(check_name(name))
    read_manifest(folder)  # refuse to make a broken folder the default
    set_setting(DEFAULT_BUNDLE_KEY, name)
    return folder
