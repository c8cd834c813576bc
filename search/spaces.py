"""Retrieval spaces: where catalogued segments and queries meet, trained and zero-shot side by side.

A space has an `id` (changes whenever its weights do) and `embed_segments(MusicSegments) -> [S, D]`.
The catalog stores each content's segments per space id and fills a new space from stored music-model
outputs (no audio decode) when the bundle changes (`ensure_space`).

- trained (and demo) bundles: segments through the ViML music tower (`TrainedSpace`);
- zero-shot bundles: a segment is the text embedding of a description of its tags ("music with piano,
  classical, slow"), so a CLIP frame or prompt embedding can be compared with it (`ZeroShotSpace`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.music.types import MusicSegments
from viml.engine.tags import TAG_THRESHOLD, column_names, strongest
from viml.engine.vectors import normalize_rows

if TYPE_CHECKING:
    from viml.catalog.store import Catalog
    from viml.engine.runtime.bundle import RuntimeBundle

DESCRIPTION_TAGS = 5


class RetrievalSpace(Protocol):
    id: str

    def embed_segments(self, segments: MusicSegments) -> np.ndarray: ...


def segment_descriptions(
    segments: MusicSegments, threshold: float = TAG_THRESHOLD, top: int = DESCRIPTION_TAGS
) -> list[str]:
    """One sentence per segment from its strongest tags across vocabularies (duplicates merged)."""
    names = column_names(segments.tag_names)
    rows = np.concatenate([segments.tag_probabilities[v] for v in segments.tag_names], axis=1)
    descriptions = []
    for row in rows:
        ranked = [tag.lower() for tag, _ in strongest(row, names, threshold, top)]
        if not ranked:  # nothing confident: fall back to the single strongest tag
            ranked = [names[int(row.argmax())].split(":", 1)[1].lower()] if row.size else ["instrumental"]
        descriptions.append("music with " + ", ".join(ranked))
    return descriptions


class ZeroShotSpace:
    """Segments as text embeddings of their tag descriptions; distinct descriptions are encoded once."""

    def __init__(
        self,
        encode_texts: Callable[[list[str]], np.ndarray],
        encoder_id: str,
        threshold: float = TAG_THRESHOLD,
    ) -> None:
        self.encode_texts = encode_texts
        self.threshold = threshold
        self.id = "zero-shot-" + hashlib.sha256(f"{encoder_id}|{threshold}|v1".encode()).hexdigest()[:16]
        self._cache: dict[str, np.ndarray] = {}

    def embed_segments(self, segments: MusicSegments) -> np.ndarray:
        descriptions = segment_descriptions(segments, self.threshold)
        new = sorted({d for d in descriptions if d not in self._cache})
        if new:
            for text, vector in zip(new, normalize_rows(self.encode_texts(new)), strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[d] for d in descriptions]).astype(np.float32)


class TrainedSpace:
    """Catalogued segments through the bundle's ViML music tower."""

    def __init__(self, bundle: RuntimeBundle) -> None:
        self.bundle = bundle
        self.towers = bundle.towers
        self.id = "viml-" + bundle.file_hash("music_tower")[:16]

    def embed_segments(self, segments: MusicSegments) -> np.ndarray:
        features = segments.embeddings.astype(np.float32)
        if features.ndim != 2 or features.shape[1] != self.towers.music_dim:
            # Analysed by another music model than the towers were trained on (scans re-analyse these).
            raise UserFacingError(
                f"bundle {self.bundle.name!r} reads {self.towers.music_dim}-d music-model embeddings but the "
                f"catalog holds {features.shape[-1]}-d ones: run `viml scan FOLDER` with this bundle to "
                "re-analyse, or use another --catalog"
            )
        return self.towers.music_segments(features)


def retrieval_space(bundle: RuntimeBundle) -> RetrievalSpace:
    """The space a bundle ranks in; created once per opened bundle (zero-shot descriptions are cached)."""
    cached = getattr(bundle, "_retrieval_space", None)
    if cached is not None:
        return cached
    if bundle.towers is not None:
        space: RetrievalSpace = TrainedSpace(bundle)
    else:
        # The space changes only when the text encoder (or the threshold) does, so unrelated rebuilds keep
        # the embeddings. The encoder's session opens at the first text (a rescan with nothing new never
        # pays for it).
        role = bundle.prompt_role
        space = ZeroShotSpace(
            lambda texts: bundle.prompt_encoder.encode_texts(texts),
            f"{role}:{bundle.file_hash(role)}",
            bundle.analysis.tag_threshold,
        )
    bundle._retrieval_space = space  # type: ignore[attr-defined]
    return space


def ensure_space(
    catalog: Catalog,
    space: RetrievalSpace,
    progress: bool = False,
    checkpoint: Callable[[], None] | None = None,
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
