"""Queries and the retrieval space of a bundle: the catalog's `QueryEncoder` and `RetrievalSpace`.

Query = one row per 10 s clip segment (K = 1 for a prompt alone), mixed by `influence` w in query space:
- trained bundles: normalize((1 - w)·q(video, NULL) + w·q(video, text)) through the ViML query tower;
- zero-shot bundles: normalize((1 - w)·v + w·t) with v the mean CLIP frame embedding of each segment
  (`catalog.retrieval.zero_shot_query`).
A clip's frame embeddings are the expensive part (decode + frame encoder); they are cached in memory and
on disk (npz, no pickle), keyed by the file's path, size and mtime, the in/out points and the frame
encoder's hash, so a second prompt on the same clip costs only a text encoding and a tower call.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
from viml.catalog.ranking import normalize_rows
from viml.engine.music.types import MusicSegments
from viml.engine.segments import DEFAULT_FPS, DEFAULT_SEGMENT_SECONDS

from viml.errors import UserFacingError
from viml.paths import cache_dir

log = logging.getLogger(__name__)

_MEMORY_CLIPS = 8


class TrainedSpace:
    """Catalogued segments through the ViML music tower, in windows of at most `max_segments`."""

    def __init__(self, bundle) -> None:  # noqa: ANN001 (RuntimeBundle)
        self.bundle = bundle
        self.id = "viml-" + bundle.file_hash("music_tower")[:16]
        self.max_segments = int(bundle.models["music_tower"]["max_segments"])
        self.music_dim = int(bundle.models["music_tower"]["inputs"][0]["shape"][2])

    def embed_segments(self, segments: MusicSegments) -> np.ndarray:
        features = segments.embeddings.astype(np.float32)
        if features.ndim != 2 or features.shape[1] != self.music_dim:
            # The catalog was analysed by another music model than the one these towers were trained on.
            raise UserFacingError(
                f"bundle {self.bundle.name!r} reads {self.music_dim}-d music-model embeddings but the catalog "
                f"holds {features.shape[-1]}-d ones: rescan with the bundle's music model "
                "(`viml scan FOLDER --reanalyze`) or use another --catalog"
            )
        session = self.bundle.session("music_tower")
        rows = []
        for start in range(0, len(features), self.max_segments):
            window = features[None, start : start + self.max_segments]
            mask = np.ones(window.shape[:2], dtype=bool)
            rows.append(session.run(["music_segments"], {"music": window, "music_mask": mask})[0][0])
        return np.concatenate(rows).astype(np.float32)


class BundleQueryEncoder:
    def __init__(self, bundle) -> None:  # noqa: ANN001 (RuntimeBundle)
        self.bundle = bundle
        self._clips: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self._prompts: dict[str, np.ndarray] = {}

    def encode_query(
        self,
        video: str | None,
        start: float | None,
        end: float | None,
        prompt: str | None,
        influence: float,
    ) -> np.ndarray:
        if not 0.0 <= influence <= 1.0:
            raise UserFacingError(f"influence must be between 0 and 1, got {influence}")
        prompt = prompt.strip() if prompt else None
        if not video and not prompt:
            raise UserFacingError("a query needs a video clip, a prompt, or both")
        if video and not self.bundle.reads_pictures:
            self.bundle.frame_encoder  # raises NoPicturesError with the how-to  # noqa: B018
        text = self.prompt_embedding(prompt) if prompt else None
        frames = self.clip_embeddings(video, start or 0.0, end) if video else None
        if "query_tower" in self.bundle.models:
            return self._trained_query(frames, text, influence)
        from viml.catalog.retrieval import zero_shot_query

        return zero_shot_query(frames, text, influence).astype(np.float32)

    def prompt_embedding(self, prompt: str) -> np.ndarray:
        if prompt not in self._prompts:
            self._prompts[prompt] = self.bundle.prompt_encoder.encode_texts([prompt])[0]
        return self._prompts[prompt]

    def _trained_query(
        self, frames: list[np.ndarray] | None, text: np.ndarray | None, influence: float
    ) -> np.ndarray:
        session = self.bundle.session("query_tower")
        text_dim = int(self.bundle.models["query_tower"]["inputs"][2]["shape"][1])
        video_dim = int(self.bundle.models["query_tower"]["inputs"][0]["shape"][2])
        if frames:
            video = np.stack([normalize_rows(f).mean(axis=0) for f in frames])[None].astype(np.float32)
            mask = np.ones((1, len(frames)), dtype=bool)
        else:
            # Prompt alone: one blank video segment (zero features). A fully masked sequence would make
            # the video transformer's attention NaN; a blank segment keeps the query finite and lets the
            # prompt drive it (the towers never saw this case in training: see the README).
            video, mask = np.zeros((1, 1, video_dim), np.float32), np.ones((1, 1), dtype=bool)

        def run(text_row: np.ndarray | None) -> np.ndarray:
            feeds = {
                "video": video,
                "video_mask": mask,
                "text": (text_row if text_row is not None else np.zeros(text_dim, np.float32))[None].astype(
                    np.float32
                ),
                "text_present": np.array([text_row is not None]),
            }
            return session.run(["query_segments"], feeds)[0][0]

        if text is None:
            return run(None)
        if not frames or influence >= 1.0:
            return run(text)
        if influence <= 0.0:
            return run(None)
        return normalize_rows((1.0 - influence) * run(None) + influence * run(text))

    def clip_embeddings(self, video: str, start: float, end: float | None) -> list[np.ndarray]:
        """Per 10 s segment, the frame embeddings [F_k, D] of the clip [start, end), cached."""
        key = self._clip_key(video, start, end)
        if key in self._clips:
            self._clips.move_to_end(key)
            return self._clips[key]
        path = cache_dir() / "clip_embeddings" / f"{key}.npz"
        segments = _read_cached(path)
        if segments is None:
            segments = self._encode_clip(video, start, end)
            _write_cached(path, segments)
        self._clips[key] = segments
        while len(self._clips) > _MEMORY_CLIPS:
            self._clips.popitem(last=False)
        return segments

    def _encode_clip(self, video: str, start: float, end: float | None) -> list[np.ndarray]:
        from viml.engine.runtime.pipeline import encode_clip_segments

        return encode_clip_segments(self.bundle.frame_encoder, video, start, end)

    def _clip_key(self, video: str, start: float, end: float | None) -> str:
        try:
            stat = os.stat(video)
        except OSError as error:
            raise UserFacingError(f"{video}: cannot read the video ({error.strerror or error})") from error
        fields = (
            str(Path(video).resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            round(start, 3),
            None if end is None else round(end, 3),
            DEFAULT_FPS,
            DEFAULT_SEGMENT_SECONDS,
            str(self.bundle.model_path("frame_encoder").name),
            self.bundle.file_hash("frame_encoder"),
            self.bundle.reuse_threshold,
        )
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:32]


def _read_cached(path: Path) -> list[np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return [data[f"segment_{i}"] for i in range(int(data["count"]))]
    except (OSError, ValueError, KeyError) as error:
        log.warning("ignoring unreadable clip cache %s (%s)", path, error)
        return None


def _write_cached(path: Path, segments: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    arrays = {f"segment_{i}": s for i, s in enumerate(segments)}
    np.savez(temporary, count=np.array(len(segments)), **arrays)
    os.replace(temporary, path)
