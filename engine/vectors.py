"""Small vector helpers shared by the run time and search (float32 throughout)."""

from __future__ import annotations

import numpy as np


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm (all-zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def segment_means(segment_frames: list[np.ndarray]) -> np.ndarray:
    """[K, D]: the mean of each segment's L2-normalised frame embeddings (the paper's segment pooling)."""
    return np.stack([normalize_rows(frames).mean(axis=0) for frames in segment_frames]).astype(np.float32)
