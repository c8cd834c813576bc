"""Provider choice: CPU fallback said once and plainly, an explicit CUDA request never silently falls back."""

from __future__ import annotations

import logging

import onnx
import pytest
from onnx import TensorProto, helper
from viml.core.errors import UserFacingError
from viml.engine.runtime import providers


@pytest.fixture
def identity_model(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
    )
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


def test_auto_runs_and_reports_the_provider_once(identity_model, caplog, monkeypatch):
    monkeypatch.setattr(providers, "_reported", set())
    monkeypatch.setattr(providers, "_cuda_unusable", False)  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="viml.engine.runtime.providers"):
        first = providers.create_session(identity_model, "auto")
        providers.create_session(identity_model, "auto")
    assert first.get_providers()[-1] == "CPUExecutionProvider"
    decisions = [r.getMessage() for r in caplog.records]
    assert len(decisions) == 1 and ("CPU" in decisions[0] or "CUDA" in decisions[0])


def test_cpu_choice_never_touches_cuda(identity_model):
    assert providers.create_session(identity_model, "cpu").get_providers() == ["CPUExecutionProvider"]


def test_explicit_cuda_either_runs_on_cuda_or_says_why(identity_model, monkeypatch):
    monkeypatch.delenv("VIML_PROVIDER", raising=False)
    monkeypatch.setattr(providers, "_cuda_unusable", False)
    try:
        session = providers.create_session(identity_model, "cuda")
    except UserFacingError as error:
        assert "CUDA" in str(error) or "GPU" in str(error)
    else:
        assert session.get_providers()[0] == "CUDAExecutionProvider"


def test_unknown_provider_is_refused():
    with pytest.raises(UserFacingError, match="unknown provider"):
        providers.requested_providers("tpu")
