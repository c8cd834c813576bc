"""Export one torch module to ONNX with dynamic axes, then prove parity with torch or refuse.

Two exporters, chosen per graph and always written as one self-contained `.onnx` file (no `.onnx.data`
beside it), which keeps hashing, copying and quantising simple:
- "legacy" (TorchScript tracing, `dynamo=False`): fast and exact for the CLIP towers and BERT; torch's
  fused multi-head-attention fast path must be off while tracing or the graph does not run.
- "dynamo" (`torch.export`): needed for `nn.TransformerEncoder` with `batch_first` (the ViML towers),
  whose traced reshapes would otherwise freeze the batch and sequence sizes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from viml.core.errors import UserFacingError

log = logging.getLogger(__name__)

OPSET = 17
DEFAULT_TOLERANCE = 1e-4  # absolute, on L2-normalised float32 outputs


class ParityError(UserFacingError):
    """An exported graph does not reproduce torch within tolerance; no bundle is written."""


@dataclass(frozen=True)
class GraphSpec:
    """Inputs/outputs of one graph: names and axes, with symbolic names for the dynamic ones."""

    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    exporter: str = "legacy"

    def dynamic_shapes(self, max_sizes: dict[str, int]) -> tuple[dict[int, Any], ...]:
        """torch.export dims for the inputs: one shared Dim per symbolic axis name."""
        dims: dict[str, Any] = {}
        for axes in self.dynamic_axes.values():
            for symbol in axes.values():
                dims.setdefault(symbol, torch.export.Dim(symbol, min=1, max=max_sizes.get(symbol, 1 << 16)))
        return tuple(
            {i: dims[s] for i, s in self.dynamic_axes.get(name, {}).items()} for name in self.input_names
        )

    def describe(self, example_inputs: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...]) -> dict:
        def entry(name: str, tensor: torch.Tensor) -> dict[str, Any]:
            axes = self.dynamic_axes.get(name, {})
            shape = [axes.get(i, int(size)) for i, size in enumerate(tensor.shape)]
            return {"name": name, "dtype": str(tensor.dtype).removeprefix("torch."), "shape": shape}

        return {
            "inputs": [entry(n, t) for n, t in zip(self.input_names, example_inputs, strict=True)],
            "outputs": [entry(n, t) for n, t in zip(self.output_names, outputs, strict=True)],
        }


def export_graph(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    spec: GraphSpec,
    max_sizes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write `module` as ONNX to `path`; returns the manifest entry for its inputs and outputs."""
    module = module.eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
            outputs = _as_tuple(module(*example_inputs))
            if spec.exporter == "dynamo":
                torch.onnx.export(
                    module,
                    example_inputs,
                    str(path),
                    input_names=spec.input_names,
                    output_names=spec.output_names,
                    dynamic_shapes=spec.dynamic_shapes(max_sizes or {}),
                    dynamo=True,
                    external_data=False,
                    optimize=True,
                    verbose=False,
                )
            else:
                torch.onnx.export(
                    module,
                    example_inputs,
                    str(path),
                    input_names=spec.input_names,
                    output_names=spec.output_names,
                    dynamic_axes=spec.dynamic_axes,
                    opset_version=OPSET,
                    dynamo=False,
                )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return {"file": path.name, **spec.describe(example_inputs, outputs)}


def check_parity(
    module: torch.nn.Module,
    path: Path,
    inputs: tuple[torch.Tensor, ...],
    spec: GraphSpec,
    tolerance: float = DEFAULT_TOLERANCE,
    label: str | None = None,
) -> dict[str, Any]:
    """Run torch and onnxruntime (CPU) on the same `inputs`; raise ParityError beyond `tolerance`."""
    import onnxruntime

    with torch.no_grad():
        expected = [t.numpy() for t in _as_tuple(module.eval()(*inputs))]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(spec.input_names, inputs, strict=True)}
    actual = session.run(spec.output_names, feeds)
    worst = 0.0
    for name, want, got in zip(spec.output_names, expected, actual, strict=True):
        if want.shape != got.shape:
            raise ParityError(
                f"{label or path.name}: output {name} has shape {got.shape}, torch {want.shape}"
            )
        worst = max(worst, float(np.max(np.abs(want - got))) if want.size else 0.0)
    batch = int(inputs[0].shape[0])
    if not worst <= tolerance:  # also catches NaN
        raise ParityError(
            f"{label or path.name}: ONNX differs from torch by {worst:.3g} (tolerance {tolerance:g}); "
            "refusing to write a bundle with this graph"
        )
    log.info(
        "parity %s: max |onnx - torch| = %.3g (tolerance %g, batch %d)",
        label or path.name,
        worst,
        tolerance,
        batch,
    )
    return {"max_abs_diff": worst, "tolerance": tolerance, "checked_batch": batch}


def _as_tuple(outputs: Any) -> tuple[torch.Tensor, ...]:
    return tuple(outputs) if isinstance(outputs, tuple | list) else (outputs,)
