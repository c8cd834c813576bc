"""What the catalog needs from a model bundle, and the zero-shot space for bundles without a ViML model.

A bundle gives the catalog two things (implemented by the bundle code in `engine/`):
- a `RetrievalSpace`: `id` (changes whenever the weights do, e.g. the bundle hash) and
  `embed_segments(MusicSegments) -> float32 [S, D]`: catalogued segments in the space queries live in.
  The catalog stores these per segment under `id` and recomputes them from stored music-model outputs
  (no audio decode) when the bundle changes.
- a `QueryEncoder`: `encode_query(video, start, end, prompt, influence) -> float32 [K, D]`, one row per
  10 s clip segment (K = 1 for a prompt alone). Influence and prompt mixing happen here, not in ranking.

Zero-shot (CLIP only): a segment is the CLIP text embedding of a description made from its tags
("music with piano, classical, slow"); the query is the clip's CLIP frame embeddings (mean per segment),
mixed with the prompt's CLIP text embedding by `influence`. `ZeroShotSpace` and `zero_shot_query` hold
that logic over any text encoder, so the bundle only supplies CLIP's encoders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from viml.catalog.ranking import normalize_rows
from viml.engine.music.types import MusicSegments

DEFAULT_TAG_THRESHOLD = 0.3  # the paper keeps tagger outputs above 0.3
DESCRIPTION_TAGS = 5


@runtime_checkable
class RetrievalSpace(Protocol):
    id: str

    def embed_segments(self, segments: MusicSegments) -> np.ndarray: ...


@runtime_checkable
class QueryEncoder(Protocol):
    def encode_query(
        self,
        video: str | None,
        start: float | None,
        end: float | None,
        prompt: str | None,
        influence: float,
    ) -> np.ndarray: ...


def segment_descriptions(
    segments: MusicSegments, threshold: float = DEFAULT_TAG_THRESHOLD, top: int = DESCRIPTION_TAGS
) -> list[str]:
    """One sentence per segment from its strongest tags across vocabularies (duplicates merged)."""
    descriptions = []
    for index in range(len(segments.starts)):
        found: dict[str, float] = {}
        for vocabulary, probabilities in segments.tag_probabilities.items():
            for tag, probability in zip(segments.tag_names[vocabulary], probabilities[index], strict=True):
                name = tag.lower()
                if probability >= threshold and probability > found.get(name, 0.0):
                    found[name] = float(probability)
        ranked = sorted(found, key=lambda name: -found[name])[:top]
        if not ranked:  # nothing confident: fall back to the single strongest tag
            best = max(
                (
                    (float(p[index].max()), segments.tag_names[v][int(p[index].argmax())])
                    for v, p in segments.tag_probabilities.items()
                    if p.shape[1]
                ),
                default=(0.0, "instrumental"),
            )
            ranked = [best[1].lower()]
        descriptions.append("music with " + ", ".join(ranked))
    return descriptions


class ZeroShotSpace:
    """Segments as text embeddings of their tag descriptions; distinct descriptions are encoded once."""

    def __init__(self, encode_texts: Callable[[list[str]], np.ndarray], encoder_id: str) -> None:
        self.encode_texts = encode_texts
        self.id = (
            "zero-shot-"
            + hashlib.sha256(f"{encoder_id}|{DEFAULT_TAG_THRESHOLD}|v1".encode()).hexdigest()[:16]
        )
        self._cache: dict[str, np.ndarray] = {}

    def embed_segments(self, segments: MusicSegments) -> np.ndarray:
        descriptions = segment_descriptions(segments)
        new = sorted({d for d in descriptions if d not in self._cache})
        if new:
            for text, vector in zip(new, normalize_rows(self.encode_texts(new)), strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[d] for d in descriptions]).astype(np.float32)


def zero_shot_query(
    segment_frames: Sequence[np.ndarray] | None, prompt: np.ndarray | None, influence: float = 0.5
) -> np.ndarray:
    """Query rows from per-segment CLIP frame embeddings ([F_k, D] each) and/or a CLIP prompt embedding.

    influence 0: the picture alone; 1: the prompt alone; between: a weighted mix of unit vectors.
    """
    if not 0.0 <= influence <= 1.0:
        raise ValueError(f"influence must be between 0 and 1, got {influence}")
    if not segment_frames and prompt is None:
        raise ValueError("a query needs a clip, a prompt, or both")
    text = normalize_rows(np.asarray(prompt, dtype=np.float32).reshape(1, -1)) if prompt is not None else None
    if not segment_frames:
        return text  # type: ignore[return-value]
    picture = normalize_rows(np.stack([normalize_rows(frames).mean(axis=0) for frames in segment_frames]))
    if text is None:
        return picture
    return normalize_rows((1.0 - influence) * picture + influence * text)


def ensure_space(
    catalog, space: RetrievalSpace, progress: bool = False, checkpoint: Callable[[], None] | None = None
) -> int:
    """Embed every catalogued content that has no embedding in `space` yet; returns how many were done.

    Each track is committed on its own; `checkpoint` runs between tracks (the desktop raises there to
    cancel a stale query, losing nothing)."""
    missing = catalog.contents_missing_space(space.id)
    if not missing:
        return 0
    from tqdm import tqdm

    for content_hash in tqdm(missing, desc="embedding", unit="track", disable=not progress):
        vectors = normalize_rows(space.embed_segments(catalog.music_segments(content_hash)))
        catalog.write_retrieval(space.id, content_hash, vectors)
        if checkpoint is not None:
            checkpoint()
    return len(missing)
