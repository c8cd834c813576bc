"""A clip's frame embeddings per 10 s segment, and prompt embeddings, cached.

A clip's frame embeddings are the expensive part of a query (decode + frame encoder); they are cached in
memory and on disk (npz, no pickle), keyed by the file's path, size and mtime, the in/out points, the
analysis spec (fps, segment length) and the frame encoder's hash, so a second prompt on the same clip
costs only a text encoding and a tower call.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle

log = logging.getLogger(__name__)

_MEMORY_CLIPS = 8


class ClipCache:
    def __init__(self, bundle: RuntimeBundle) -> None:
        self.bundle = bundle
        self._clips: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self._prompts: dict[str, np.ndarray] = {}

    def prompt_embedding(self, prompt: str) -> np.ndarray:
        if prompt not in self._prompts:
            self._prompts[prompt] = self.bundle.prompt_encoder.encode_texts([prompt])[0]
        return self._prompts[prompt]

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
            self.bundle.analysis.fps,
            self.bundle.analysis.segment_seconds,
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
