"""The trained ViML towers → `query_tower.onnx` and `music_tower.onnx`, dynamic in batch and segments.

query_tower(video [B,K,Dv], video_mask [B,K] bool, text [B,Dt], text_present [B] bool)
    → query_segments [B,K,D], query [B,D]      (L2-normalised)
music_tower(music [B,S,Dm], music_mask [B,S] bool) → music_segments [B,S,D], music [B,D]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from viml.export_onnx.graphs import GraphSpec, check_parity, export_graph

QUERY_SPEC = GraphSpec(
    ["video", "video_mask", "text", "text_present"],
    ["query_segments", "query"],
    {
        "video": {0: "batch", 1: "segments"},
        "video_mask": {0: "batch", 1: "segments"},
        "text": {0: "batch"},
        "text_present": {0: "batch"},
        "query_segments": {0: "batch", 1: "segments"},
        "query": {0: "batch"},
    },
    exporter="dynamo",
)
MUSIC_SPEC = GraphSpec(
    ["music", "music_mask"],
    ["music_segments", "music_embedding"],  # not "music": ONNX names must differ from the input's
    {
        "music": {0: "batch", 1: "segments"},
        "music_mask": {0: "batch", 1: "segments"},
        "music_segments": {0: "batch", 1: "segments"},
        "music_embedding": {0: "batch"},
    },
    exporter="dynamo",
)


class _QueryTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.query_tower(video, video_mask, text, text_present)


class _MusicTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, music: torch.Tensor, music_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.music_tower(music, music_mask)


def _masks(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Ragged masks: each row keeps at least one segment, so padding paths are exercised."""
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length
    return torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)


def export_towers(model: torch.nn.Module, folder: Path, tolerance: float) -> dict[str, dict[str, Any]]:
    config = model.config
    model = model.eval()
    g = torch.Generator().manual_seed(0)

    def query_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
        present = torch.rand(batch, generator=g) < 0.5
        present[0] = True
        return (
            torch.randn(batch, length, config.video_dim, generator=g),
            _masks(batch, length, g),
            torch.randn(batch, config.text_dim, generator=g),
            present,
        )

    def music_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
        return torch.randn(batch, length, config.music_dim, generator=g), _masks(batch, length, g)

    query, music = _QueryTower(model), _MusicTower(model)
    limits = {"segments": config.max_segments}  # learned positions exist for this many segments
    entries = {
        "query_tower": export_graph(
            query, query_inputs(2, 3), folder / "query_tower.onnx", QUERY_SPEC, limits
        ),
        "music_tower": export_graph(
            music, music_inputs(2, 3), folder / "music_tower.onnx", MUSIC_SPEC, limits
        ),
    }
    # Other batch and segment counts than the traced ones, with padding, prove the dynamic axes.
    entries["query_tower"]["parity"] = check_parity(
        query, folder / "query_tower.onnx", query_inputs(4, 5), QUERY_SPEC, tolerance
    )
    entries["music_tower"]["parity"] = check_parity(
        music, folder / "music_tower.onnx", music_inputs(3, 6), MUSIC_SPEC, tolerance
    )
    for entry in entries.values():
        entry["embed_dim"] = config.embed_dim
        entry["max_segments"] = config.max_segments
    return entries
