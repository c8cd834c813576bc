"""Queries: one row per clip segment (K = 1 for a prompt alone), mixed by `influence` w in query space.

- trained bundles: normalize((1 - w)·q(video, NULL) + w·q(video, text)) through the ViML query tower;
- zero-shot bundles: normalize((1 - w)·v + w·t), v the mean CLIP frame embedding of each segment and t
  the prompt's text embedding.
w = 0 is the picture alone, w = 1 the prompt alone. `influence` is checked once, by `SuggestRequest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from viml.engine.vectors import normalize_rows, segment_means

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.engine.runtime.towers import Towers


def zero_shot_query(
    segment_frames: Sequence[np.ndarray] | None, prompt: np.ndarray | None, influence: float = 0.5
) -> np.ndarray:
    """Query rows from per-segment CLIP frame embeddings ([F_k, D] each) and/or a prompt embedding."""
    if not segment_frames and prompt is None:
        raise ValueError("a query needs a clip, a prompt, or both")
    text = normalize_rows(np.asarray(prompt, dtype=np.float32).reshape(1, -1)) if prompt is not None else None
    if not segment_frames:
        return text  # type: ignore[return-value]
    picture = normalize_rows(segment_means(list(segment_frames)))
    if text is None:
        return picture
    return normalize_rows((1.0 - influence) * picture + influence * text)


def trained_query(
    towers: Towers, segment_frames: list[np.ndarray] | None, text: np.ndarray | None, influence: float
) -> np.ndarray:
    if text is None:
        return towers.query_segments(segment_frames, None)
    if not segment_frames or influence >= 1.0:
        return towers.query_segments(segment_frames, text)
    if influence <= 0.0:
        return towers.query_segments(segment_frames, None)
    with_text = towers.query_segments(segment_frames, text)
    return normalize_rows(
        (1.0 - influence) * towers.query_segments(segment_frames, None) + influence * with_text
    )


def encode_query(
    bundle: RuntimeBundle,
    video: str | None,
    start: float,
    end: float | None,
    text: str | None,
    influence: float,
) -> np.ndarray:
    """float32 [K, D] query rows for a clip [start, end) of `video` and/or the text to embed."""
    if video and not bundle.reads_pictures:
        bundle.frame_encoder  # raises NoPicturesError with the how-to  # noqa: B018
    prompt = bundle.clips.prompt_embedding(text) if text else None
    frames = bundle.clips.clip_embeddings(video, start, end) if video else None
    if bundle.towers is not None:
        return trained_query(bundle.towers, frames, prompt, influence).astype(np.float32)
    return zero_shot_query(frames, prompt, influence).astype(np.float32)
