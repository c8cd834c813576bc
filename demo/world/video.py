"""Procedural "music videos": RGB frames whose look follows a piece's hidden attributes.

What the picture shows, and from which attribute:
- colour: base hue from mode (warm = major, cool = minor) plus per-piece and per-shot jitter;
- brightness and saturation: energy;
- motion: shapes drift at a speed proportional to tempo, and the frame pulses on every beat;
- editing: a cut every `cut_bars` bars (on the bar line), so cutting rate follows tempo and energy;
- shapes: soft blobs ("organic") or hard bars and boxes ("geometric"), tied to the style only loosely.
The exact instrumentation is never drawn, so "piano" vs "strings" must come from a prompt.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator

import numpy as np
from viml.demo.world.attributes import PieceAttributes

SHAPE_WEIGHT = np.float32(4.0)


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(
        colorsys.hsv_to_rgb(hue % 1.0, float(np.clip(saturation, 0, 1)), float(np.clip(value, 0, 1)))
    )


class _Shot:
    """One camera shot: a background gradient and a few moving shapes, drawn from a per-shot seed."""

    def __init__(self, attributes: PieceAttributes, rng: np.random.Generator) -> None:
        energy = attributes.energy
        self.hue = attributes.hue + rng.normal(0.0, 0.03)
        saturation = 0.25 + 0.65 * energy + rng.normal(0.0, 0.05)
        value = 0.3 + 0.6 * energy + rng.normal(0.0, 0.04)
        self.background = (
            _rgb(self.hue, saturation * 0.8, value * 0.55),
            _rgb(self.hue + 0.05, saturation, value * 0.8),
        )
        self.angle = rng.uniform(0, 2 * np.pi)
        count = int(rng.integers(2, 4) + round(3 * energy))
        colours = [_rgb(self.hue + rng.normal(0, 0.05), saturation, value) for _ in range(count)]
        self.colours = np.array(colours, dtype=np.float32)
        self.positions = rng.uniform(0, 1, size=(count, 2))
        directions = rng.uniform(0, 2 * np.pi, size=count)
        self.velocities = np.stack([np.cos(directions), np.sin(directions)], axis=1)
        self.sizes = rng.uniform(0.08, 0.2, size=count).astype(np.float32)
        self.spread = (2 * self.sizes**2)[:, None]
        self.family = attributes.visual_family


def render_frames(
    attributes: PieceAttributes, seconds: float, seed: int, fps: int = 12, width: int = 160, height: int = 120
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames [height, width, 3] covering `seconds` at `fps`."""
    beat = 60.0 / attributes.tempo
    shot_seconds = attributes.cut_bars * 4 * beat
    # Tempo sets speed: frame widths travelled per beat.
    speed = np.float32(0.06 * (0.5 + attributes.energy))
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    aspect = width / height
    shot, shot_index, background = None, -1, None
    for index in range(int(round(seconds * fps))):
        time = index / fps
        if int(time // shot_seconds) != shot_index:
            shot_index = int(time // shot_seconds)
            shot = _Shot(attributes, np.random.default_rng([seed, 2, shot_index]))
            ramp = np.cos(shot.angle) * xs[None, :] + np.sin(shot.angle) * ys[:, None]
            ramp = ((ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6))[..., None]
            background = (shot.background[0] * (1 - ramp) + shot.background[1] * ramp).astype(np.float32)
        beats_in_shot = (time - shot_index * shot_seconds) / beat
        centres = (shot.positions + speed * beats_in_shot * shot.velocities) % 1.0
        # Distances wrap around the edges; shapes are separable, so each alpha is an outer product.
        dx = ((xs[None, :] - centres[:, :1] + 0.5) % 1.0 - 0.5) * aspect  # [shapes, width]
        dy = (ys[None, :] - centres[:, 1:] + 0.5) % 1.0 - 0.5  # [shapes, height]
        if shot.family == "organic":
            rows, cols = np.exp(-(dy**2) / shot.spread), np.exp(-(dx**2) / shot.spread)
        else:
            rows = (np.abs(dy) < shot.sizes[:, None] * 0.6).astype(np.float32)
            cols = (np.abs(dx) < shot.sizes[:, None]).astype(np.float32)
        # Weighted blend (one matrix product instead of per-shape compositing): a shape's centre is 80%
        # its own colour, overlapping shapes mix.
        weights = (SHAPE_WEIGHT * rows[:, :, None] * cols[:, None, :]).reshape(len(rows), -1)
        mixed = background.reshape(-1, 3) + weights.T @ shot.colours
        image = (mixed / (1.0 + weights.sum(axis=0))[:, None]).reshape(height, width, 3)
        # A flash on each beat whose strength follows energy.
        pulse = 1.0 + 0.25 * attributes.energy * np.exp(-6.0 * (time / beat % 1.0))
        yield (np.clip(image * np.float32(pulse), 0, 1) * 255).astype(np.uint8)
