"""A real X server for desktop tests: Xvfb on a free display, and Python run in it over Qt's xcb platform.

The offscreen platform cannot drag (QDrag.exec returns at once) and never loads the xcb plugin, so what
only happens on a user's X11 desktop (a drag let go over the app itself, the plugin's system libraries)
is tested in a child process on this display. scripts/system-deps.sh installs Xvfb.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent


@contextlib.contextmanager
def xvfb(screen: str = "1600x1000x24", timeout: float = 20.0) -> Iterator[str]:
    """Start Xvfb on a display it picks itself (-displayfd: no race with other servers); yields ":N"."""
    if shutil.which("Xvfb") is None:
        import pytest

        pytest.skip("Xvfb is not installed: run scripts/system-deps.sh")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    try:
        number = b""
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read], [], [], timeout)
            chunk = os.read(read, 16) if ready else b""
            if not chunk:
                server.kill()
                raise RuntimeError(f"Xvfb did not start: {server.communicate()[1].decode(errors='replace')}")
            number += chunk
        yield f":{int(number)}"
    finally:
        os.close(read)
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def x11_environment(display: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child on `display` over xcb (Qt picks xcb from DISPLAY, as on a desktop)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("QT_", "WAYLAND"))}
    environment.update(DISPLAY=display, VIML_HOME=str(home), XDG_SESSION_TYPE="x11", **extra)
    return environment


def run_in_x(
    display: str, home: Path, arguments: list[str], timeout: float = 240.0, **extra: str
) -> subprocess.CompletedProcess:
    """`python ARGUMENTS...` on the display, from the tests folder (so it imports the tests' helpers)."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=TESTS,
        env=x11_environment(display, home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
