"""The feature cache: per-segment video, music and text features of a collection, computed once and
trained on many times.

On disk: `features.safetensors` (numpy arrays: concatenated per-segment rows plus offsets) and
`features.json` (item ids, splits, texts, tags, and what produced every feature). No pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
ARRAYS_FILE = "features.safetensors"
INDEX_FILE = "features.json"


@dataclass
class ItemFeatures:
    """One video-music pair (a music video): aligned segment sequences plus its texts."""

    id: str
    split: str  # "train" / "val" / "test"
    video: np.ndarray  # float32 [Sv, Dv] mean frame embedding per segment
    music: np.ndarray  # float32 [Sm, Dm] music-model embedding per segment
    texts: dict[str, list[str]]  # synthesis method -> texts describing the music
    text_embeddings: dict[str, np.ndarray]  # method -> float32 [len(texts), Dt]
    tags: dict[str, dict[str, float]] = field(default_factory=dict)  # vocabulary -> tag -> probability


@dataclass
class FeatureSet:
    items: list[ItemFeatures]
    # What produced the features, e.g. {"frame_encoder": "viml-tiny with RANDOM weights", ...}.
    provenance: dict[str, str]
    segment_seconds: float = 10.0
    fps: float = 6.0

    @property
    def video_dim(self) -> int:
        return int(self.items[0].video.shape[1])

    @property
    def music_dim(self) -> int:
        return int(self.items[0].music.shape[1])

    @property
    def text_dim(self) -> int:
        for item in self.items:
            for embeddings in item.text_embeddings.values():
                if len(embeddings):
                    return int(embeddings.shape[1])
        raise ValueError("the feature set has no text embeddings")

    @property
    def text_methods(self) -> list[str]:
        return sorted({method for item in self.items for method in item.texts})

    def split(self, name: str) -> list[ItemFeatures]:
        return [item for item in self.items if item.split == name]

    def with_texts(self, method: str, texts: dict[str, list[str]], embeddings: dict[str, np.ndarray]) -> None:
        """Add (or replace) one text method for the items named in `texts`."""
        for item in self.items:
            if item.id in texts:
                item.texts[method] = texts[item.id]
                item.text_embeddings[method] = embeddings[item.id].astype(np.float32)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        index_items = []
        for position, item in enumerate(self.items):
            arrays[f"{position}/video"] = np.ascontiguousarray(item.video, np.float32)
            arrays[f"{position}/music"] = np.ascontiguousarray(item.music, np.float32)
            for method, embeddings in item.text_embeddings.items():
                arrays[f"{position}/text/{method}"] = np.ascontiguousarray(embeddings, np.float32)
            index_items.append({"id": item.id, "split": item.split, "texts": item.texts, "tags": item.tags})
        index = {
            "format_version": FORMAT_VERSION,
            "provenance": self.provenance,
            "segment_seconds": self.segment_seconds,
            "fps": self.fps,
            "items": index_items,
        }
        # Write both files under temporary names, then rename: a killed run never leaves a torn cache.
        temporary_arrays = folder / (ARRAYS_FILE + ".tmp")
        temporary_index = folder / (INDEX_FILE + ".tmp")
        save_file(arrays, str(temporary_arrays))
        temporary_index.write_text(json.dumps(index, indent=1))
        temporary_arrays.replace(folder / ARRAYS_FILE)
        temporary_index.replace(folder / INDEX_FILE)

    @classmethod
    def load(cls, folder: Path) -> FeatureSet:
        from safetensors.numpy import load_file

        index = json.loads((folder / INDEX_FILE).read_text())
        if index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder}: unsupported feature cache version {index.get('format_version')}")
        arrays = load_file(str(folder / ARRAYS_FILE))
        items = []
        for position, meta in enumerate(index["items"]):
            text_embeddings = {
                method: arrays[f"{position}/text/{method}"]
                for method in meta["texts"]
                if f"{position}/text/{method}" in arrays
            }
            items.append(
                ItemFeatures(
                    id=meta["id"],
                    split=meta["split"],
                    video=arrays[f"{position}/video"],
                    music=arrays[f"{position}/music"],
                    texts=meta["texts"],
                    text_embeddings=text_embeddings,
                    tags=meta.get("tags", {}),
                )
            )
        return cls(items, index["provenance"], index["segment_seconds"], index["fps"])


def describe(features: FeatureSet) -> dict[str, object]:
    counts = {name: len(features.split(name)) for name in ("train", "val", "test")}
    return {"items": len(features.items), **counts, **features.provenance}
