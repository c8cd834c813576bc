"""Turn a collection of music videos (the demo world, or any folder of video + music pairs) into a
feature cache: per-segment frame embeddings, music-model embeddings and tags, and synthesised texts.

Per item:  video ─frames at 6 fps─▶ frame encoder ─mean per 10 s segment─▶ video features
           music ─music model─▶ per-segment embedding + tag probabilities ─▶ texts (tags, data2text, ...)
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from viml.engine.media import iter_segment_frames
from viml.engine.preprocess import preprocess_frames
from viml.engine.segments import DEFAULT_FPS, DEFAULT_SEGMENT_SECONDS
from viml.training.features import FeatureSet, ItemFeatures

if TYPE_CHECKING:
    from viml.engine.music.runtime import MusicModel
    from viml.training.encoders.clip import ClipEncoder
    from viml.training.encoders.text import TextEncoder

log = logging.getLogger(__name__)

# Training texts per item and method: enough variety for tags shuffles and data2text wordings.
TEXTS_PER_ITEM = 4
# "heldout" descriptions use wording no training template uses: evaluation queries only.
DEFAULT_TEXT_METHODS = ("tags", "data2text", "heldout")


@dataclass(frozen=True)
class Pair:
    id: str
    split: str
    video: Path
    music: Path


class _Piece(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def split(self) -> str: ...


class _World(Protocol):
    """What `world_pairs` reads of a world: the demo's `World` (training sits below demo, so not imported)."""

    @property
    def pieces(self) -> Sequence[_Piece]: ...

    def video_path(self, piece: Any) -> Path: ...

    def music_path(self, piece: Any) -> Path: ...


def video_features(
    path: Path,
    frame_encoder: ClipEncoder,
    fps: float = DEFAULT_FPS,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
) -> np.ndarray:
    """Mean frame embedding per segment → float32 [S, D] (the paper's video input)."""
    prep = frame_encoder.preprocessing
    rows = []
    for segment in iter_segment_frames(
        path, fps=fps, segment_seconds=segment_seconds, short_side=prep.image_size
    ):
        pixels = preprocess_frames(segment.frames, prep.image_size, prep.mean, prep.std)
        rows.append(frame_encoder.encode_images(pixels).mean(axis=0))
    return np.stack(rows).astype(np.float32)


def track_tags(
    tag_probabilities: dict[str, np.ndarray], tag_names: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """Mean tag probability over a track's segments, per vocabulary (what text synthesis reads)."""
    return {
        vocabulary: {
            name: round(float(p), 4) for name, p in zip(tag_names[vocabulary], probs.mean(0), strict=True)
        }
        for vocabulary, probs in tag_probabilities.items()
    }


def synthesize_texts(
    tags: dict[str, dict[str, float]], item_id: str, methods: Sequence[str], seed: int
) -> dict[str, list[str]]:
    from viml.engine.text.synthesis import synthesize

    texts: dict[str, list[str]] = {}
    for method in methods:
        rng = random.Random(f"{seed}:{method}:{item_id}")
        found: list[str] = []
        for _ in range(TEXTS_PER_ITEM * 3):  # a few extra tries: short tag lists have few wordings
            try:
                text = synthesize(tags, method, rng)
            except ValueError:  # no tag above threshold: nothing to describe
                break
            if text and text not in found:
                found.append(text)
            if len(found) == TEXTS_PER_ITEM:
                break
        texts[method] = found
    return texts


def extract_features(
    pairs: Sequence[Pair],
    frame_encoder: ClipEncoder,
    text_encoder: TextEncoder,
    music_model: MusicModel,
    text_methods: Sequence[str] = DEFAULT_TEXT_METHODS,
    seed: int = 0,
    progress: bool = True,
    provenance: dict[str, str] | None = None,
) -> FeatureSet:
    """Features of every pair; a pair whose media cannot be read is logged and skipped."""
    from tqdm import tqdm
    from viml.core.errors import MediaError

    items: list[ItemFeatures] = []
    for pair in tqdm(pairs, desc="features", unit="pair", disable=not progress, leave=False):
        try:
            video = video_features(pair.video, frame_encoder)
            music = music_model.analyze_file(pair.music)
        except MediaError as error:
            log.warning("skipping %s: %s", pair.id, error)
            continue
        tags = track_tags(music.tag_probabilities, music.tag_names)
        texts = synthesize_texts(tags, pair.id, text_methods, seed)
        items.append(ItemFeatures(pair.id, pair.split, video, music.embeddings, texts, {}, tags))
    embed_texts(items, text_encoder)
    return FeatureSet(items, dict(provenance or {}))


def embed_texts(items: list[ItemFeatures], text_encoder: TextEncoder) -> None:
    """One batched pass over every text of every item (much faster than per item)."""
    flat = [(item, method, text) for item in items for method, texts in item.texts.items() for text in texts]
    if not flat:
        return
    embeddings = text_encoder.encode_texts([text for _, _, text in flat])
    position = 0
    for item in items:
        for method, texts in item.texts.items():
            item.text_embeddings[method] = embeddings[position : position + len(texts)].astype(np.float32)
            position += len(texts)
        # Methods with no text keep an empty [0, D] block so every item has the same keys.
        for method in item.texts:
            if not len(item.texts[method]):
                item.text_embeddings[method] = np.zeros((0, embeddings.shape[1]), np.float32)


def world_pairs(world: _World) -> list[Pair]:
    return [Pair(p.id, p.split, world.video_path(p), world.music_path(p)) for p in world.pieces]
