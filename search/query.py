"""Queries: one row per clip segment (K = 1 for a prompt alone), mixed by `influence` w in query space.

w says how much the prompt counts against the picture, and its ends mean exactly that:
- w = 0: the picture alone. The searcher does not read the prompt at all (no embedding, no terms, no
  words): the ranking is the clip's own.
- w = 1: the prompt alone. The searcher does not read the picture: the query is the prompt's one row,
  the ranking exactly the prompt-only search's (the clip's length still sets how long each part is).
- in between, trained bundles walk from the picture's query through the model's own joint query to the
  prompt's, linearly in two halves (q(v, t): the query tower with the clip and the prompt; NULL: no text;
  q(∅, t): the prompt alone):
      w <= 0.5: normalize((1 - 2w)·q(v, NULL) + 2w·q(v, t))
      w >= 0.5: normalize((2 - 2w)·q(v, t) + (2w - 1)·q(∅, t))
  so the default 0.5 is the model's joint query, and counting q(v, t) as half picture, half prompt, the
  prompt's share of the mix is w everywhere. (Before, w = 1 was q(v, t): the picture still decided.)
- zero-shot bundles: normalize((1 - w)·v + w·t), v the mean CLIP frame embedding of each segment and t
  the prompt's text embedding.
`influence` is checked once, by `SuggestRequest`; `SuggestRequest.prompt_share` applies the ends.
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
    if not segment_frames or (text is not None and influence >= 1.0):
        return text  # type: ignore[return-value]
    picture = normalize_rows(segment_means(list(segment_frames)))
    if text is None or influence <= 0.0:
        return picture
    return normalize_rows((1.0 - influence) * picture + influence * text)


def trained_query(
    towers: Towers, segment_frames: list[np.ndarray] | None, text: np.ndarray | None, influence: float
) -> np.ndarray:
    """The query tower's rows for the clip and/or prompt, mixed by `influence` (the module docstring)."""
    if text is None or (segment_frames and influence <= 0.0):
        return towers.query_segments(segment_frames, None)
    if not segment_frames or influence >= 1.0:
        return towers.query_segments(None, text)
    joint = towers.query_segments(segment_frames, text)
    if influence == 0.5:
        return joint
    if influence < 0.5:
        picture = towers.query_segments(segment_frames, None)
        return normalize_rows((1.0 - 2.0 * influence) * picture + 2.0 * influence * joint)
    prompt = towers.query_segments(None, text)  # one row, broadcast over the clip's segments
    return normalize_rows((2.0 - 2.0 * influence) * joint + (2.0 * influence - 1.0) * prompt)


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
