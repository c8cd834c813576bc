"""Numpy CLIP preprocessing against open_clip's own eval transform.

Tolerance 1e-6: both sides resize with PIL bicubic and do the same float32 arithmetic (measured
difference: exactly 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import write_video
from PIL import Image
from viml.engine.media import video_segment_frames
from viml.engine.preprocess import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD, preprocess_frames, resized_size

open_clip = pytest.importorskip("open_clip")  # the train extra; the run time itself needs no torch

TOLERANCE = 1e-6
SHAPES = [(48, 64), (300, 200), (224, 398), (225, 225), (31, 517), (720, 1280)]


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth gradients plus noise: exercises the bicubic filter more than flat colour would."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(1, width - 1), y * 255 / max(1, height - 1), (x + y) % 256], axis=-1)
    return np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)


def reference(transform, image: np.ndarray) -> np.ndarray:
    return transform(Image.fromarray(image)).numpy()


def test_constants_match_open_clip():
    from open_clip.constants import OPENAI_DATASET_MEAN as MEAN
    from open_clip.constants import OPENAI_DATASET_STD as STD

    assert tuple(MEAN) == OPENAI_DATASET_MEAN and tuple(STD) == OPENAI_DATASET_STD


def test_parity_with_create_model_and_transforms():
    _, _, transform = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    images = [textured(h, w, seed) for seed, (h, w) in enumerate(SHAPES)]
    ours = preprocess_frames(images)
    assert ours.shape == (len(SHAPES), 3, 224, 224) and ours.dtype == np.float32
    for image, mine in zip(images, ours, strict=True):
        np.testing.assert_allclose(mine, reference(transform, image), atol=TOLERANCE)


def test_parity_with_other_bundle_parameters():
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    transform = open_clip.image_transform(160, is_train=False, mean=mean, std=std, interpolation="bilinear")
    image = textured(120, 333, seed=7)
    ours = preprocess_frames([image], image_size=160, mean=mean, std=std, interpolation="bilinear")
    np.testing.assert_allclose(ours[0], reference(transform, image), atol=TOLERANCE)


def test_decoded_frames_feed_straight_in(tmp_path):
    """Frames decoded with short_side=224 need only crop + normalise, and agree with open_clip."""
    path = write_video(tmp_path / "clip.mp4", seconds=1, fps=10, size=(96, 64))
    (segment,) = video_segment_frames(path, short_side=224)
    assert segment.frames.shape[1:] == (224, 336, 3)
    transform = open_clip.image_transform(224, is_train=False)
    ours = preprocess_frames(segment.frames)
    assert ours.shape == (6, 3, 224, 224)
    np.testing.assert_allclose(ours[0], reference(transform, segment.frames[0]), atol=TOLERANCE)


def test_greyscale_and_rgba_inputs_become_rgb():
    grey = textured(50, 70, seed=3)[:, :, 0]
    rgba = np.concatenate([textured(50, 70, seed=4), np.full((50, 70, 1), 128, np.uint8)], axis=2)
    transform = open_clip.image_transform(32, is_train=False)
    ours = preprocess_frames([grey, rgba], image_size=32)
    np.testing.assert_allclose(ours[0], reference(transform, grey), atol=TOLERANCE)
    np.testing.assert_allclose(ours[1], reference(transform, rgba), atol=TOLERANCE)


def test_resized_size_truncates_the_long_side_like_torchvision():
    assert resized_size(64, 48, 224) == (298, 224)  # 224 * 64 / 48 = 298.67
    assert resized_size(48, 64, 224) == (224, 298)
    assert resized_size(300, 300, 224) == (224, 224)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="shape"):
        preprocess_frames([np.zeros((8, 8, 2), np.uint8)])
    with pytest.raises(ValueError, match="interpolation"):
        preprocess_frames([np.zeros((8, 8, 3), np.uint8)], interpolation="lanczos9")
    assert preprocess_frames(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 3, 224, 224)
