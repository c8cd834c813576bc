"""Settings the app shows are the ones the engine reads: the provider every onnxruntime session uses and
the language model server `viml synth` talks to."""

from __future__ import annotations

import pytest
from viml.desktop.dialogs import SettingsDialog
from viml.desktop.settings import AppSettings
from viml.engine.runtime.providers import requested_providers
from viml.engine.text.llm import LLMConfig


def test_run_models_on_is_the_engines_provider(qtbot, monkeypatch):
    import onnxruntime
    from viml.engine.runtime import providers

    monkeypatch.delenv("VIML_PROVIDER", raising=False)
    # A machine whose onnxruntime offers CUDA: "auto" would use it...
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [providers._CUDA, providers._CPU])
    monkeypatch.setattr(providers, "_cuda_unusable", False)
    assert requested_providers("auto") == [providers._CUDA, providers._CPU]
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.provider.setCurrentText("cpu")
    dialog.accept()
    # ...until the app's "Run models on: cpu" says otherwise, for every session of the engine.
    assert requested_providers("auto") == [providers._CPU]
    monkeypatch.setenv("VIML_PROVIDER", "auto")  # the environment still wins over the settings file
    assert requested_providers("auto") == [providers._CUDA, providers._CPU]


def test_llm_server_is_what_viml_synth_reads(qtbot, monkeypatch):
    for name in ("VIML_LLM_URL", "VIML_LLM_MODEL", "VIML_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.llm.setText("http://127.0.0.1:8080/v1")
    dialog.llm_model.setText("local-model")
    dialog.accept()
    config = LLMConfig.from_env()
    assert (config.url, config.model) == ("http://127.0.0.1:8080/v1", "local-model")
    again = SettingsDialog(AppSettings())
    qtbot.addWidget(again)
    assert again.llm.text() == "http://127.0.0.1:8080/v1" and again.provider.currentText() == "auto"


def test_unknown_provider_in_the_settings_file_is_a_clear_error(monkeypatch):
    from viml.core.errors import UserFacingError
    from viml.core.settings import set_setting

    monkeypatch.delenv("VIML_PROVIDER", raising=False)
    set_setting("provider", "tpu")
    with pytest.raises(UserFacingError, match="unknown provider 'tpu'"):
        requested_providers("auto")


def test_a_new_run_models_on_choice_applies_without_a_restart(qtbot, tmp_path, monkeypatch):
    """The app keeps its bundle open between queries; a changed "Run models on" opens it again on the
    new provider (its sessions were made on the old one), and the same choice reuses the open one."""
    from test_bundle_manifest import make_bundle
    from viml.desktop import backend

    monkeypatch.delenv("VIML_PROVIDER", raising=False)
    make_bundle(tmp_path / "b")
    first = backend.open_runtime(str(tmp_path / "b"))
    assert first.provider == "auto" and backend.open_runtime(str(tmp_path / "b")) is first
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.provider.setCurrentText("cpu")
    dialog.accept()
    on_cpu = backend.open_runtime(str(tmp_path / "b"))
    assert on_cpu is not first and on_cpu.provider == "cpu"
