"""Shared by the service and add-on tests: a real catalog of the e2e world, `viml serve` in a child.

The home has the real musicnn models and the BeatNet models converted from their wheel, so the scan
measures beats and the service renders fitted excerpts. The catalog is scanned with the zero-shot
bundle and then the demo bundle (a tiny trained ViML that reads pictures), which the service ranks
with; built once per test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import e2e_helpers as e2e
import pytest


@dataclass(frozen=True)
class Library:
    home: Path  # VIML_HOME of the service and its CLI runs
    catalog: Path
    bundle: Path  # the demo bundle: reads pictures


@cache
def library() -> Library:
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.beatnet import convert, find_beatnet

    pytest.importorskip("open_clip")  # the demo bundle is trained with a tiny CLIP
    demo, zero_shot = e2e.demo_bundle(), e2e.zero_shot_bundle()
    root = e2e._root() / "service"
    home = root / "home"
    shutil.copytree(e2e.home() / "models" / "musicnn", home / "models" / "musicnn")
    try:
        source = find_beatnet(download=False)
    except WeightsUnavailableError:
        pytest.skip("the BeatNet 1.1.3 wheel is not available offline on this machine")
    convert(wheel=source.path, output=home / "models" / "beatnet")
    catalog = root / "catalog.sqlite"
    for bundle in (zero_shot, demo):
        e2e.viml("scan", str(e2e.world().root / "music"), "--catalog", str(catalog), "--bundle", str(bundle),
                 "-j", "1", home=home)  # fmt: skip
    return Library(home, catalog, demo)


@dataclass(frozen=True)
class Running:
    url: str
    token: str
    library: Library
    process: subprocess.Popen

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextlib.contextmanager
def running_service(lib: Library, *extra: str) -> Iterator[Running]:
    """`viml serve --port 0` on the library until the block ends; waits for its endpoint file."""
    env = {**os.environ, "VIML_HOME": str(lib.home), "HF_HUB_OFFLINE": "1", "VIML_PROVIDER": "cpu"}
    endpoint = lib.home / "service" / "endpoint.json"
    endpoint.unlink(missing_ok=True)
    process = subprocess.Popen(
        [*e2e.VIML, "serve", "--catalog", str(lib.catalog), "--bundle", str(lib.bundle), "--port", "0", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not endpoint.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"viml serve did not start:\n{process.stdout.read() if process.stdout else ''}"
                )
            time.sleep(0.1)
        url = json.loads(endpoint.read_text())["url"]
        token = (lib.home / "service" / "token").read_text().strip()
        yield Running(url, token, lib, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
