"""The service's secrets on disk: a per-user token and the endpoint file clients find the port in.

Both live in `viml_home()/service/` (the platform's user data folder, or VIML_HOME), in a folder only
the user can enter (0700), as files only the user can read (0600). A token file that others can read
is treated as leaked: it is replaced by a new token. On Windows the folder's ACL (the user's own
AppData) does this job; chmod only sets the read-only flag there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
import sys
from pathlib import Path

from viml.core.paths import viml_home

log = logging.getLogger("viml.service")

TOKEN_FILE = "token"
ENDPOINT_FILE = "endpoint.json"
_PRIVATE = sys.platform != "win32"  # POSIX modes mean something


def service_dir() -> Path:
    folder = viml_home() / "service"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _PRIVATE:
        os.chmod(folder, 0o700)
    return folder


def token_path() -> Path:
    return service_dir() / TOKEN_FILE


def _readable_by_others(path: Path) -> bool:
    return _PRIVATE and bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, created 0600 from the start (never briefly world-readable), moved in place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    temporary.unlink(missing_ok=True)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def ensure_token() -> str:
    """The user's service token, created on first use (43 URL-safe characters, 256 bits)."""
    path = token_path()
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token and not _readable_by_others(path):
            return token
        log.warning("%s was readable by other users (or empty): replaced by a new token", path)
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def write_endpoint(url: str) -> Path:
    """Where the running service listens, for clients that were not told (`viml_client.find_service`)."""
    path = service_dir() / ENDPOINT_FILE
    write_private(path, json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    return path


def remove_endpoint() -> None:
    path = service_dir() / ENDPOINT_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
