"""CLIP image and text towers → `frame_encoder.onnx` and `clip_text_encoder.onnx` (L2-normalised outputs).

The towers come from the lead's `engine.encoders.clip.ClipEncoder` (name + pretrained tag, local
checkpoint, or the tiny random config); its BPE merges file is copied into the bundle so the run time
tokenises without open_clip (`engine/runtime/clip_tokenizer.py`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from viml.export_onnx.graphs import GraphSpec, check_parity, export_graph

if TYPE_CHECKING:
    from viml.training.encoders.clip import ClipEncoder

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
FRAME_SPEC = GraphSpec(["image"], ["embedding"], {"image": {0: "batch"}, "embedding": {0: "batch"}})
TEXT_SPEC = GraphSpec(["tokens"], ["embedding"], {"tokens": {0: "batch"}, "embedding": {0: "batch"}})
PARITY_PROMPTS = [
    "a slow sad piano piece",
    "Épée & naïve café — “upbeat” drums!!",
    "energetic rock with distorted guitars for a car chase at night " * 6,
]


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(image), dim=-1)


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def load_clip(spec_text: str) -> ClipEncoder:
    from viml.training.encoders.clip import ClipEncoder, ClipSpec

    return ClipEncoder(ClipSpec.parse(spec_text))


def export_clip(clip: ClipEncoder, folder: Path, tolerance: float) -> dict[str, dict[str, Any]]:
    """Write both towers and the tokenizer into `folder`; returns their manifest model entries."""
    import open_clip

    size = clip.preprocessing.image_size
    generator = torch.Generator().manual_seed(0)
    tokenizers_dir = folder / "tokenizers"
    tokenizers_dir.mkdir(exist_ok=True)
    shutil.copyfile(Path(open_clip.__file__).with_name(BPE_FILE), tokenizers_dir / BPE_FILE)

    image_tower = _ImageTower(clip.model)
    frame = export_graph(
        image_tower,
        (torch.randn(2, 3, size, size, generator=generator),),
        folder / "frame_encoder.onnx",
        FRAME_SPEC,
    )
    # Parity on a batch size other than the traced one proves the dynamic axis.
    frame["parity"] = check_parity(
        image_tower,
        folder / "frame_encoder.onnx",
        (torch.randn(3, 3, size, size, generator=generator),),
        FRAME_SPEC,
        tolerance,
    )
    text_tower = _TextTower(clip.model)
    tokens = torch.from_numpy(clip.tokenizer(["a dog", "music"]).numpy())
    text = export_graph(text_tower, (tokens,), folder / "clip_text_encoder.onnx", TEXT_SPEC)
    text["parity"] = check_parity(
        text_tower, folder / "clip_text_encoder.onnx", (clip.tokenizer(PARITY_PROMPTS),), TEXT_SPEC, tolerance
    )
    source = {"clip": str(clip.spec), "description": clip.spec.describe()}
    context_length = int(tokens.shape[1])
    frame.update(source, embed_dim=clip.embed_dim)
    text.update(
        source,
        embed_dim=clip.embed_dim,
        tokenizer={"type": "clip_bpe", "file": f"tokenizers/{BPE_FILE}", "context_length": context_length},
    )
    return {"frame_encoder": frame, "clip_text_encoder": text}


def image_preprocessing(clip: ClipEncoder) -> dict[str, Any]:
    p = clip.preprocessing
    return {
        "image_size": p.image_size,
        "mean": list(p.mean),
        "std": list(p.std),
        "interpolation": "bicubic",
        "resize": "short side to image_size (PIL bicubic), then centre crop (engine.preprocess)",
        "channels": "RGB, float32 in [0, 1] before normalisation, NCHW",
    }
