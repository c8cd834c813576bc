"""open_clip frame and text encoders, chosen by model name + pretrained tag or local checkpoint.

Spec strings: "ViT-B-32:openai" (the paper), "ViT-B-32:/path/to/open_clip_pytorch_model.bin" (a local
file), "viml-tiny:random" (a small randomly initialised config shipped here, for tests and the offline
demo; every report that uses it says so).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.core.errors import WeightsUnavailableError

if TYPE_CHECKING:
    from types import ModuleType

    import torch

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).with_name("model_configs")
RANDOM_TAG = "random"


@dataclass(frozen=True)
class ClipSpec:
    model_name: str
    pretrained: str  # an open_clip pretrained tag, a local checkpoint path, or "random"

    @classmethod
    def parse(cls, text: str) -> ClipSpec:
        name, sep, pretrained = text.partition(":")
        if not sep or not name or not pretrained:
            raise ValueError(f"CLIP spec must be NAME:TAG or NAME:/path/to/checkpoint, got {text!r}")
        return cls(name, pretrained)

    @property
    def is_random(self) -> bool:
        return self.pretrained == RANDOM_TAG

    @property
    def is_local_file(self) -> bool:
        return os.path.sep in self.pretrained or Path(self.pretrained).suffix in {
            ".bin",
            ".pt",
            ".safetensors",
        }

    def describe(self) -> str:
        if self.is_random:
            return (
                f"{self.model_name} with RANDOMLY INITIALISED weights (demo/tests only, not a trained CLIP)"
            )
        return f"{self.model_name} pretrained '{self.pretrained}'"

    def __str__(self) -> str:
        return f"{self.model_name}:{self.pretrained}"


@dataclass(frozen=True)
class ImagePreprocessing:
    """What a frame encoder expects; bundles record it so the torch-free run time reproduces it."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _register_shipped_configs() -> None:
    import open_clip

    if "viml-tiny" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Switch the Hugging Face hub client offline for the duration (it reads the flag at call time)."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = offline or previous
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


class ClipEncoder:
    """Wraps an open_clip model: `encode_images` (preprocessed float32 NCHW) and `encode_texts`."""

    def __init__(
        self, spec: ClipSpec, device: str = "cpu", seed: int = 0, allow_download: bool = False
    ) -> None:
        import open_clip
        import torch

        _register_shipped_configs()
        self.spec = spec
        self.device = device
        torch.manual_seed(seed)  # makes "random" towers reproducible for a seed
        try:
            if spec.is_random:
                model = open_clip.create_model(spec.model_name, pretrained=None)
            else:
                model = self._load_pretrained(open_clip, spec, allow_download)
        except WeightsUnavailableError:
            raise
        except RuntimeError as error:
            if "Unknown model" in str(error) or "not found" in str(error):
                raise WeightsUnavailableError(f"unknown CLIP model {spec.model_name!r}: {error}") from error
            raise
        self.model = model.eval().to(device)
        visual = self.model.visual
        size = visual.image_size
        self.preprocessing = ImagePreprocessing(
            image_size=int(size[0] if isinstance(size, tuple | list) else size),
            mean=tuple(float(x) for x in visual.image_mean or open_clip.OPENAI_DATASET_MEAN),
            std=tuple(float(x) for x in visual.image_std or open_clip.OPENAI_DATASET_STD),
        )
        self.tokenizer = open_clip.get_tokenizer(spec.model_name)
        self.embed_dim = int(open_clip.get_model_config(spec.model_name)["embed_dim"])

    @staticmethod
    def _load_pretrained(open_clip: ModuleType, spec: ClipSpec, allow_download: bool) -> torch.nn.Module:
        if spec.is_local_file and not Path(spec.pretrained).is_file():
            raise WeightsUnavailableError(f"CLIP checkpoint file not found: {spec.pretrained}")
        # Offline unless asked: with no internet the hub client otherwise retries for ~47 s before failing.
        with _hub_offline(not allow_download):
            try:
                return open_clip.create_model(spec.model_name, pretrained=spec.pretrained)
            except Exception as error:  # open_clip raises HTTP, OS and Runtime errors for missing weights
                raise WeightsUnavailableError(
                    f"could not load CLIP weights {spec} ({type(error).__name__}: {error}). "
                    "Either allow a download once on a machine with internet (--download; open_clip caches "
                    "it under ~/.cache/huggingface), or copy the checkpoint file here and pass it as "
                    f"'{spec.model_name}:/path/to/open_clip_pytorch_model.bin'."
                ) from error

    def encode_images(self, pixels: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """pixels float32 [N,3,S,S] preprocessed → L2-normalised float32 [N,D]."""
        import torch

        outputs = []
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch_size])).to(
                    self.device
                )
                outputs.append(torch.nn.functional.normalize(self.model.encode_image(batch), dim=-1).cpu())
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, self.embed_dim), np.float32)

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        outputs = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(texts[start : start + batch_size]).to(self.device)
                outputs.append(torch.nn.functional.normalize(self.model.encode_text(tokens), dim=-1).cpu())
        return torch.cat(outputs).numpy()
