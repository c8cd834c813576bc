"""The app's remembered choices, kept in the one settings file the CLI shares (core/settings.py)."""

from __future__ import annotations

from typing import Any

from viml.core.settings import get_setting, set_setting

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
    def recent_prompts(self) -> list[str]:
        """Prompts the user settled on, newest first (the prompt box's completer and Recent menu)."""
        stored = self._get("recent_prompts", [])
        return [p for p in stored if isinstance(p, str)] if isinstance(stored, list) else []

    @recent_prompts.setter
    def recent_prompts(self, prompts: list[str]) -> None:
        self._set("recent_prompts", list(prompts))

    # Audition: what the preview plays through, how loud, and what happens at the out point.
    @property
    def audio_device(self) -> str | None:
        """The audition's output, as `audition.output_devices` names it ("device, host API"); None: the
        system's default output."""
        value = self._get("audio_device")
        return value if isinstance(value, str) and value else None

    @audio_device.setter
    def audio_device(self, name: str | None) -> None:
        self._set("audio_device", name or None)

    @property
    def preview_volume(self) -> float:
        """The preview volume slider's position, 0..1 (1: the music at its matched loudness)."""
        value = self._get("preview_volume", 1.0)
        valid = isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0
        return float(value) if valid else 1.0

    @preview_volume.setter
    def preview_volume(self, fraction: float) -> None:
        self._set("preview_volume", None if fraction == 1.0 else round(float(fraction), 3))

    @property
    def audition_loop(self) -> bool:
        """At the out point an audition loops back to the in point (True) or stops (False, default)."""
        return self._get("audition_loop") is True

    @audition_loop.setter
    def audition_loop(self, loop: bool) -> None:
        self._set("audition_loop", True if loop else None)

    # Shared with the engine and the CLI (no "desktop." prefix): what the app shows is what they read.
    @property
    def provider(self) -> str:
        """onnxruntime provider for every model: auto | cuda | cpu (engine/runtime/providers.py)."""
        return get_setting("provider", "auto")

    @provider.setter
    def provider(self, value: str) -> None:
        set_setting("provider", None if value == "auto" else value)

    @property
    def llm_url(self) -> str | None:
        """OpenAI-compatible server for prompt2text (`viml synth`, engine/text/llm.py)."""
        return get_setting("llm_url")

    @llm_url.setter
    def llm_url(self, url: str | None) -> None:
        set_setting("llm_url", url or None)

    @property
    def llm_model(self) -> str | None:
        return get_setting("llm_model")

    @llm_model.setter
    def llm_model(self, name: str | None) -> None:
        set_setting("llm_model", name or None)

    @property
    def analyzer(self) -> str | None:
        """Music model spec for scans (None: the product's default music model)."""
        return self._get("analyzer")
