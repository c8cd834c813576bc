"""The ViML model (McKee et al., CVPR 2023), readable top to bottom.

    video segments ─▶ video transformer ─┐
                                          ├─▶ fusion transformer ─▶ query embedding (per segment, pooled)
    prompt (or NULL) ─▶ text transformer ─┘
    music segments ─▶ music transformer ──────────────────────────▶ music embedding (per segment, pooled)

Inputs are precomputed per-segment features: the mean CLIP image embedding of a segment's frames, the
text embedding of the prompt, and the music model's segment embedding. Any backbone with fixed-size
segment vectors plugs in through `ViMLConfig.video_dim / text_dim / music_dim`.

Text dropout: in training, with probability `text_dropout` the text embedding is replaced by a learned
NULL embedding; at inference "no prompt" means NULL. Loss: InfoNCE on cosine similarity with temperature
0.03, both directions (video+text → music and music → video+text) summed (see `training/loss.py`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ViMLConfig:
    video_dim: int = 512
    text_dim: int = 512
    music_dim: int = 256
    width: int = 256
    heads: int = 4
    layers: int = 2
    fusion_layers: int = 2
    embed_dim: int = 256
    max_segments: int = 64
    dropout: float = 0.1
    text_dropout: float = 0.8
    temperature: float = 0.03

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ViMLConfig:
        return cls(**json.loads(text))

    @classmethod
    def named(cls, name: str, **values: float) -> ViMLConfig:
        """A size from `model_configs/NAME.json` (as open_clip's model configs), with the input dims and
        any overrides given as keyword arguments."""
        path = MODEL_CONFIGS / f"{name}.json"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in MODEL_CONFIGS.glob("*.json")))
            raise ValueError(f"unknown ViML model config {name!r} (known: {known})")
        sizes = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "about"}
        return cls(**{**sizes, **values})


MODEL_CONFIGS = Path(__file__).with_name("model_configs")
MODEL_CONFIG_NAMES = tuple(sorted(p.stem for p in MODEL_CONFIGS.glob("*.json")))


class SequenceEncoder(nn.Module):
    """Project per-segment features, add segment positions, run a transformer encoder."""

    def __init__(self, input_dim: int, config: ViMLConfig, layers: int) -> None:
        super().__init__()
        self.input = nn.Sequential(nn.LayerNorm(input_dim), nn.Linear(input_dim, config.width))
        self.position = nn.Parameter(torch.zeros(config.max_segments, config.width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            dim_feedforward=4 * config.width,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        # enable_nested_tensor=False keeps one code path for training, export and inference.
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features [B,S,input_dim], mask [B,S] True where a segment exists → tokens [B,S,width]."""
        tokens = self.input(features) + self.position[: features.shape[1]]
        return self.transformer(tokens, src_key_padding_mask=~mask)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class ViML(nn.Module):
    def __init__(self, config: ViMLConfig) -> None:
        super().__init__()
        self.config = config
        self.video_encoder = SequenceEncoder(config.video_dim, config, config.layers)
        self.text_encoder = SequenceEncoder(config.text_dim, config, config.layers)
        self.music_encoder = SequenceEncoder(config.music_dim, config, config.layers)
        # The NULL text embedding lives in the text *input* space, as in the paper (x^t := x^NULL).
        self.null_text = nn.Parameter(torch.zeros(config.text_dim))
        nn.init.normal_(self.null_text, std=0.02)
        fusion_config = ViMLConfig(**{**asdict(config), "max_segments": config.max_segments + 1})
        self.fusion = SequenceEncoder(config.width, fusion_config, config.fusion_layers)
        self.query_head = nn.Linear(config.width, config.embed_dim)
        self.music_head = nn.Linear(config.width, config.embed_dim)

    def apply_text_dropout(self, text_present: torch.Tensor) -> torch.Tensor:
        """In training, keep each prompt only with probability 1 - text_dropout."""
        if not self.training or self.config.text_dropout <= 0:
            return text_present
        keep = torch.rand(text_present.shape, device=text_present.device) >= self.config.text_dropout
        return text_present & keep

    def query_tower(
        self,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        text: torch.Tensor,
        text_present: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """video [B,K,Dv], video_mask [B,K], text [B,Dt], text_present [B] →
        (query_segments [B,K,D], query [B,D]), both L2-normalised."""
        # A row without any video segment would make attention NaN: treat it as one blank segment.
        no_video = ~video_mask.any(dim=1, keepdim=True)
        first_slot = torch.zeros_like(video_mask)
        first_slot[:, 0] = True
        video_mask = video_mask | (no_video & first_slot)
        text_present = self.apply_text_dropout(text_present)
        text = torch.where(text_present.unsqueeze(-1), text, self.null_text.expand_as(text))
        ones = torch.ones(text.shape[0], 1, dtype=torch.bool, device=text.device)
        text_token = self.text_encoder(text.unsqueeze(1), ones)
        video_tokens = self.video_encoder(video, video_mask)
        # The fusion transformer sees the text token first, then the video segments.
        fused = self.fusion(torch.cat([text_token, video_tokens], 1), torch.cat([ones, video_mask], 1))
        segment_tokens = self.query_head(fused[:, 1:])
        pooled = masked_mean(segment_tokens, video_mask)
        return F.normalize(segment_tokens, dim=-1), F.normalize(pooled, dim=-1)

    def music_tower(self, music: torch.Tensor, music_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """music [B,S,Dm], music_mask [B,S] → (music_segments [B,S,D], music [B,D]), L2-normalised."""
        segment_tokens = self.music_head(self.music_encoder(music, music_mask))
        pooled = masked_mean(segment_tokens, music_mask)
        return F.normalize(segment_tokens, dim=-1), F.normalize(pooled, dim=-1)


def save_checkpoint(model: ViML, path: Path, extra: dict[str, str] | None = None) -> None:
    """Weights in safetensors (never pickle), the config in its metadata."""
    from safetensors.torch import save_file

    metadata = {"viml_config": model.config.to_json(), **(extra or {})}
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def load_checkpoint(path: Path, map_location: str = "cpu") -> tuple[ViML, dict[str, str]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    model = ViML(ViMLConfig.from_json(metadata["viml_config"]))
    model.load_state_dict(load_file(str(path), device=map_location))
    return model, metadata
