"""CLIP image preprocessing in numpy (no torch), matching open_clip's eval transform.

open_clip's `image_transform(size, is_train=False)` is: Resize(size) of the short side with PIL bicubic,
CenterCrop(size), RGB, /255, Normalize(mean, std). The same steps here, with Pillow doing the resize so
the pixels agree with open_clip's (a numpy bicubic would differ by a few grey levels). Mean, std, size
and interpolation are parameters because a model bundle records its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

# open_clip.constants.OPENAI_DATASET_MEAN / _STD (the CLIP ViT-B/32 statistics).
OPENAI_DATASET_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_DATASET_STD = (0.26862954, 0.26130258, 0.27577711)

_INTERPOLATIONS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def preprocess_frames(
    frames: np.ndarray | Sequence[np.ndarray],
    image_size: int = 224,
    mean: Sequence[float] = OPENAI_DATASET_MEAN,
    std: Sequence[float] = OPENAI_DATASET_STD,
    interpolation: str = "bicubic",
) -> np.ndarray:
    """RGB uint8 frames ([N, H, W, 3] array, or a list of [H, W, 3] of any sizes) -> float32 [N, 3, S, S].

    Frames from `engine.media.video_segment_frames(..., short_side=image_size)` already have the right
    short side, so only the crop and normalisation remain (PIL skips a same-size resize too).
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}")
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    mean_array = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    std_array = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    output = np.empty((len(frames), 3, image_size, image_size), np.float32)
    for index, frame in enumerate(frames):
        cropped = _resize_and_crop(_checked(frame), image_size, _INTERPOLATIONS[interpolation])
        # RGB after the resize, as open_clip does (PIL resizes RGBA with premultiplied alpha).
        output[index] = cropped[:, :, :3].transpose(2, 0, 1)
    # Same float32 arithmetic as ToTensor (x / 255) and Normalize ((x - mean) / std).
    output /= np.float32(255.0)
    output -= mean_array
    output /= std_array
    return output


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(short_side): the long side is truncated, not rounded."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def _checked(frame: np.ndarray) -> np.ndarray:
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got {array.dtype}")
    if array.ndim == 2:  # greyscale: open_clip converts to RGB
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"frames must be [H, W, 3] RGB, got shape {array.shape}")
    return array


def _resize_and_crop(frame: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    height, width = frame.shape[:2]
    new_width, new_height = resized_size(width, height, size)
    if (new_width, new_height) != (width, height):
        frame = np.asarray(Image.fromarray(frame).resize((new_width, new_height), resample))
    # torchvision CenterCrop: offsets rounded half to even, like Python's round().
    top = int(round((new_height - size) / 2.0))
    left = int(round((new_width - size) / 2.0))
    return frame[top : top + size, left : left + size]
