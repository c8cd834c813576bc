"""User settings shared by the CLI and the desktop app: one small JSON file in `viml_home()`.

Writes go through a temporary file and `os.replace`, so a crash never leaves half a file; an unreadable
file is reported as a clear error rather than silently reset (it may hold choices the user made).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from viml.core.errors import UserFacingError
from viml.core.paths import viml_home

SETTINGS_FILE = "settings.json"


def settings_path() -> Path:
    return viml_home() / SETTINGS_FILE


def load_settings() -> dict[str, Any]:
    path = settings_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserFacingError(f"{path}: settings file is unreadable ({error}); fix or delete it") from error
    if not isinstance(data, dict):
        raise UserFacingError(f"{path}: settings file must hold a JSON object; fix or delete it")
    return data


def get_setting(key: str, default: Any = None) -> Any:
    return load_settings().get(key, default)


def set_setting(key: str, value: Any) -> None:
    """Set one key (None removes it), keeping every other setting."""
    settings = load_settings()
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    path = settings_path()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(settings, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
