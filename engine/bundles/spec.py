"""The analysis spec: how media must be analysed for a bundle's models, owned by the bundle's manifest.

Written at export from what training really used (segment length, fps, the music model and its file
hashes, tag vocabularies, the tag threshold) and read back by every consumer: the scan analyses music
with the spec's music model and segment rules, the query side samples clips at its fps, tagging and
search read tags at its threshold. `analysis_id` names what determines a catalogued analysis (music
model weights + segment rules + the version of what the analysis computes), so the catalog can tell, at
scan time, which files a bundle needs re-analysed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from viml.engine.segments import DEFAULT_FPS, DEFAULT_MIN_FRACTION, DEFAULT_SEGMENT_SECONDS
from viml.engine.tags import TAG_THRESHOLD

# What the run-time analysis computes per segment, beyond the model's weights and the segment rules:
# 1 = tags + embeddings; 2 = + measured sound descriptors (engine/music/descriptors.py). Raise it whenever
# catalogued analyses must be redone (a scan re-analyses files stored under another analysis_id).
ANALYSIS_VERSION = 2


@dataclass(frozen=True)
class AnalysisSpec:
    music_model: str = "musicnn"  # the model's name (musicnn MTT + MSD)
    # Files of the music model, relative to its folder -> sha256: the weights the analysis came from.
    music_model_files: dict[str, str] = field(default_factory=dict)
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    min_segment_fraction: float = DEFAULT_MIN_FRACTION
    fps: float = DEFAULT_FPS
    tag_vocabularies: dict[str, list[str]] = field(default_factory=dict)
    tag_threshold: float = TAG_THRESHOLD
    # A property of this code, not of a bundle: the analysis a scan stores is what this ViML computes,
    # whichever bundle asked for it, so it is not written to or read from manifests.
    analysis_version: ClassVar[int] = ANALYSIS_VERSION

    def __post_init__(self) -> None:
        for name in ("segment_seconds", "fps", "tag_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or value != value:
                raise ValueError(f"analysis spec: {name} must be a positive number, got {value!r}")
        if not 0.0 <= self.min_segment_fraction <= 1.0:
            raise ValueError(
                f"analysis spec: min_segment_fraction must be in [0, 1], got {self.min_segment_fraction}"
            )

    @property
    def analysis_id(self) -> str:
        """Changes exactly when a catalogued music analysis would: other weights, segment rules or
        analysis version."""
        key = {
            "version": self.analysis_version,
            "model": self.music_model,
            "files": dict(sorted(self.music_model_files.items())),
            "segment_seconds": float(self.segment_seconds),
            "min_segment_fraction": float(self.min_segment_fraction),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return f"{self.music_model}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnalysisSpec:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)

    def describe(self) -> str:
        return (
            f"{self.music_model} ({self.analysis_id}), {self.segment_seconds:g} s segments, "
            f"video at {self.fps:g} fps, tags above {self.tag_threshold:g}"
        )


def music_model_files(files: dict[str, str], prefix: str = "") -> dict[str, str]:
    """The weight files of a music model from a file table (relative path -> sha256), names relative to
    the model's folder: the same files give the same names in a bundle and in the converted folder."""
    return {
        name[len(prefix) :]: digest
        for name, digest in sorted(files.items())
        if name.startswith(prefix) and name.endswith(".onnx")
    }


def spec_from_manifest(manifest: dict[str, Any]) -> AnalysisSpec:
    """The bundle's analysis spec; bundles written before it was recorded get it from their other fields."""
    if isinstance(manifest.get("analysis"), dict):
        return AnalysisSpec.from_json(manifest["analysis"])
    video = manifest.get("preprocessing", {}).get("video", {})
    music = manifest.get("music_model") or {}
    prefix = music.get("folder", "music").rstrip("/") + "/"
    return AnalysisSpec(
        music_model=music.get("name", "musicnn"),
        music_model_files=music_model_files(manifest.get("files", {}), prefix) if music else {},
        segment_seconds=float(video.get("segment_seconds", DEFAULT_SEGMENT_SECONDS)),
        min_segment_fraction=float(video.get("min_fraction", DEFAULT_MIN_FRACTION)),
        fps=float(video.get("fps", DEFAULT_FPS)),
        tag_vocabularies=manifest.get("tag_vocabularies", {}),
    )
