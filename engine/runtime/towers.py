"""The trained ViML towers of a bundle (query tower, music tower) as plain functions of arrays.

What a row means and how rows are mixed into a query is the search's business (viml.search.query);
here is only how the exported graphs are fed: masks, the learned NULL text, windows of segments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from viml.engine.vectors import segment_means

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle


class Towers:
    def __init__(self, bundle: RuntimeBundle) -> None:
        self.bundle = bundle
        music = bundle.models["music_tower"]
        query = bundle.models["query_tower"]
        self.max_segments = int(music["max_segments"])
        self.music_dim = int(music["inputs"][0]["shape"][2])
        self.video_dim = int(query["inputs"][0]["shape"][2])
        self.text_dim = int(query["inputs"][2]["shape"][1])

    def music_segments(self, features: np.ndarray) -> np.ndarray:
        """[S, D] retrieval embeddings of a track's music-model features [S, music_dim]."""
        session = self.bundle.session("music_tower")
        rows = []
        for start in range(0, len(features), self.max_segments):
            window = np.ascontiguousarray(features[None, start : start + self.max_segments], np.float32)
            mask = np.ones(window.shape[:2], dtype=bool)
            rows.append(session.run(["music_segments"], {"music": window, "music_mask": mask})[0][0])
        return np.concatenate(rows).astype(np.float32)

    def query_segments(self, segment_frames: list[np.ndarray] | None, text: np.ndarray | None) -> np.ndarray:
        """[K, D] query rows for a clip's per-segment frame embeddings and a prompt (None: the NULL text)."""
        if segment_frames:
            video = segment_means(segment_frames)[None]
            mask = np.ones((1, len(segment_frames)), dtype=bool)
        else:
            # Prompt alone: one blank video segment (zero features). A fully masked sequence would make
            # the video transformer's attention NaN; a blank segment keeps the query finite and lets the
            # prompt drive it (the towers never saw this case in training: see the README).
            video, mask = np.zeros((1, 1, self.video_dim), np.float32), np.ones((1, 1), dtype=bool)
        row = text if text is not None else np.zeros(self.text_dim, np.float32)
        feeds = {
            "video": video,
            "video_mask": mask,
            "text": np.asarray(row, np.float32)[None],
            "text_present": np.array([text is not None]),
        }
        return self.bundle.session("query_tower").run(["query_segments"], feeds)[0][0]
