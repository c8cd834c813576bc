"""The app's remembered choices, kept in the one settings file the CLI shares (viml/settings.py)."""

from __future__ import annotations

from typing import Any

from viml.settings import get_setting, set_setting

PREFIX = "desktop."


class AppSettings:
    """Typed access to desktop settings. The bundle key is the CLI's own default-bundle setting."""

    def _get(self, key: str, default: Any = None) -> Any:
        return get_setting(PREFIX + key, default)

    def _set(self, key: str, value: Any) -> None:
        set_setting(PREFIX + key, value if value not in ("", []) else None)

    @property
    def music_folders(self) -> list[str]:
        return list(self._get("music_folders", []))

    @music_folders.setter
    def music_folders(self, folders: list[str]) -> None:
        self._set("music_folders", list(dict.fromkeys(folders)))

    @property
    def catalog(self) -> str | None:
        return self._get("catalog")

    @catalog.setter
    def catalog(self, path: str | None) -> None:
        self._set("catalog", path)

    @property
    def bundle(self) -> str | None:
        """A bundle name or folder; None means the CLI's default bundle."""
        return self._get("bundle")

    @bundle.setter
    def bundle(self, value: str | None) -> None:
        self._set("bundle", value)

    @property
    def providers(self) -> str:
        return self._get("providers", "auto")  # auto | cpu | gpu

    @providers.setter
    def providers(self, value: str) -> None:
        self._set("providers", value)

    @property
    def llm_server(self) -> str | None:
        return self._get("llm_server")

    @llm_server.setter
    def llm_server(self, url: str | None) -> None:
        self._set("llm_server", url)

    @property
    def analyzer(self) -> str | None:
        """Music model spec for scans (None: the product's default music model)."""
        return self._get("analyzer")
