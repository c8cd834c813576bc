"""int8 dynamic quantisation of a float ONNX graph, kept only if its embeddings stay close.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises activations on the fly: on CPU
the transformer layers of a ViT run ~2x faster. The check: cosine similarity between quantised and float
embeddings of the same inputs; below `min_cosine` the variant is dropped and the bundle says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MIN_COSINE = 0.99


def quantize_int8(
    float_path: Path, int8_path: Path, inputs: dict[str, np.ndarray], min_cosine: float = MIN_COSINE
) -> dict[str, Any] | None:
    """Write `int8_path`; returns its manifest variant entry, or None (file removed) when too far off."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(
        max(level, logging.WARNING)
    )  # the quantiser logs one INFO line per tensor on the root logger
    try:
        quantize_dynamic(
            str(float_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    finally:
        root.setLevel(level)
    cpu = ["CPUExecutionProvider"]
    reference = onnxruntime.InferenceSession(str(float_path), providers=cpu).run(None, inputs)[0]
    quantised = onnxruntime.InferenceSession(str(int8_path), providers=cpu).run(None, inputs)[0]
    cosine = cosine_rows(reference, quantised)
    entry = {
        "file": int8_path.name,
        "precision": "int8 dynamic (MatMul/Gemm weights per channel)",
        "cosine_vs_float_min": float(cosine.min()),
        "cosine_vs_float_mean": float(cosine.mean()),
        "checked_inputs": int(len(reference)),
        "min_cosine": min_cosine,
    }
    if not cosine.min() >= min_cosine:
        log.warning("int8 %s dropped: cosine vs float %.4f < %.2f", float_path.name, cosine.min(), min_cosine)
        int8_path.unlink(missing_ok=True)
        return None
    log.info("int8 %s kept: cosine vs float min %.4f mean %.4f", float_path.name, cosine.min(), cosine.mean())
    return entry


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=-1)
