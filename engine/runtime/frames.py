"""Video frames → CLIP image embeddings with onnxruntime: preprocessing, batching, near-duplicate reuse.

Speed on CPU comes from three honest places, each measured by `bench/runtime.py`:
- onnxruntime with full graph optimisation, in batches (one call per `batch_size` frames);
- the int8 variant of the frame encoder when the bundle has one (cosine vs float recorded at export);
- reuse: a frame whose 16×16 grey thumbnail differs from the last *encoded* frame by less than
  `reuse_threshold` (mean absolute difference, 0-1 scale) takes that frame's embedding. Static shots at
  6 fps are mostly such frames; the bench reports the cosine error this causes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from viml.engine.preprocess import preprocess_frames

if TYPE_CHECKING:
    import onnxruntime

DEFAULT_BATCH_SIZE = 16
DEFAULT_REUSE_THRESHOLD = 0.01
_THUMB = 16


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """[N,H,W,3] uint8 → [N,16,16] float32 grey in 0-1, by block means (cheap, noise-tolerant)."""
    n, height, width = frames.shape[:3]
    grey = frames.astype(np.float32).mean(axis=-1) / 255.0
    rows = np.linspace(0, height, _THUMB + 1).astype(int)
    cols = np.linspace(0, width, _THUMB + 1).astype(int)
    grey = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=1), cols[:-1], axis=2)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float32)
    return grey / counts


class FrameEncoder:
    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        preprocessing: dict,
        embed_dim: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        reuse_threshold: float = DEFAULT_REUSE_THRESHOLD,
    ) -> None:
        self.session = session
        self.image_size = int(preprocessing["image_size"])
        self.mean = preprocessing["mean"]
        self.std = preprocessing["std"]
        self.interpolation = preprocessing.get("interpolation", "bicubic")
        self.embed_dim = embed_dim
        self.batch_size = batch_size
        self.reuse_threshold = reuse_threshold
        self.input_name = session.get_inputs()[0].name
        self.last_reused = 0  # frames that took a neighbour's embedding in the last call (for reports)
        self.total_reused = 0

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed float32 [N,3,S,S] → L2-normalised [N,D], in batches."""
        outputs = [np.zeros((0, self.embed_dim), np.float32)]
        for start in range(0, len(pixels), self.batch_size):
            batch = np.ascontiguousarray(pixels[start : start + self.batch_size], dtype=np.float32)
            outputs.append(self.session.run(None, {self.input_name: batch})[0])
        return np.concatenate(outputs)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB [N,H,W,3] (short side = image_size) → [N,D]; near-identical frames share embeddings."""
        if len(frames) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        owners = self._owners(frames)
        unique = np.unique(owners)
        self.last_reused = len(frames) - len(unique)
        self.total_reused += self.last_reused
        pixels = preprocess_frames(frames[unique], self.image_size, self.mean, self.std, self.interpolation)
        embeddings = self.encode_pixels(pixels)
        return embeddings[np.searchsorted(unique, owners)]

    def _owners(self, frames: np.ndarray) -> np.ndarray:
        """For each frame, the index of the frame whose embedding it uses (itself when it is encoded)."""
        owners = np.arange(len(frames))
        if self.reuse_threshold <= 0:
            return owners
        thumbs = thumbnails(frames)
        anchor = 0
        for i in range(1, len(frames)):
            if float(np.abs(thumbs[i] - thumbs[anchor]).mean()) < self.reuse_threshold:
                owners[i] = anchor
            else:
                anchor = i
        return owners
