"""Hidden attributes of one piece, from which both its music and its video are generated.

Music uses: style (instrumentation), tempo, mode, key, energy. Video uses: mode -> hue, energy ->
brightness/saturation, tempo -> motion speed and cut rate, and `visual_family` (tied to style only with
probability `FAMILY_FIDELITY`) -> shapes. Per-piece jitter (`hue_jitter`, `cut_bars`) keeps pairs
distinguishable without making any one attribute a trivial key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from viml.demo.world.styles import STYLE_NAMES, STYLES

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Probability that a video shows its style's usual shape family; otherwise the other one.
FAMILY_FIDELITY = 0.7
# Base hue (0..1 on the colour wheel) per mode: warm for major, cool for minor.
MODE_HUE = {"major": 0.08, "minor": 0.62}


@dataclass(frozen=True)
class PieceAttributes:
    style: str
    tempo: float  # BPM
    mode: str  # "major" | "minor"
    key: int  # tonic pitch class, 0 = C
    energy: float  # 0..1: loudness, note density, drum density; brightness and saturation in video
    hue: float  # 0..1 video base hue (mode's hue plus jitter)
    visual_family: str  # "organic" | "geometric"
    cut_bars: int  # bars per video shot

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; known: {', '.join(STYLE_NAMES)}")
        if self.mode not in MODE_HUE:
            raise ValueError(f"mode must be 'major' or 'minor', got {self.mode!r}")
        if not 20 <= self.tempo <= 300:
            raise ValueError(f"tempo must be 20..300 BPM, got {self.tempo}")
        if not 0.0 <= self.energy <= 1.0:
            raise ValueError(f"energy must be in 0..1, got {self.energy}")

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.key]} {self.mode}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PieceAttributes:
        return cls(**data)


def sample_attributes(rng: np.random.Generator, style: str | None = None) -> PieceAttributes:
    """Draw one piece's hidden attributes; `style` fixes the instrumentation."""
    style = style if style is not None else str(rng.choice(STYLE_NAMES))
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_NAMES)}")
    spec = STYLES[style]
    low, high = spec.tempo_range
    tempo = round(float(rng.uniform(low, high)), 1)
    mode = "minor" if rng.random() < 0.5 else "major"
    key = int(rng.integers(0, 12))
    # Drummed styles lean energetic, solo/ambient styles lean calm, but every style spans a range.
    centre = 0.65 if spec.drum_kit is not None else 0.4
    energy = round(float(np.clip(rng.normal(centre, 0.2), 0.05, 0.98)), 3)
    hue = round(float((MODE_HUE[mode] + rng.normal(0.0, 0.06)) % 1.0), 3)
    family = spec.visual_family
    if rng.random() > FAMILY_FIDELITY:
        family = "geometric" if family == "organic" else "organic"
    # Energetic pieces cut more often: 1, 2 or 4 bars per shot.
    cut_bars = int(rng.choice([1, 2, 4], p=_cut_probabilities(energy)))
    return PieceAttributes(style, tempo, mode, key, energy, hue, family, cut_bars)


def _cut_probabilities(energy: float) -> list[float]:
    weights = np.array([energy**2, 0.35, (1.0 - energy) ** 2]) + 0.05
    return list(weights / weights.sum())


def ground_truth_tags(attributes: PieceAttributes) -> list[str]:
    """Descriptive words (instrument, genre, mood, tempo) that are true of the piece by construction."""
    tags = list(STYLES[attributes.style].tags)
    tags += ["happy", "bright"] if attributes.mode == "major" else ["sad", "dark"]
    if attributes.energy >= 0.65:
        tags += ["energetic", "loud"]
    elif attributes.energy <= 0.35:
        tags += ["calm", "quiet"]
    if attributes.tempo >= 125:
        tags.append("fast")
    elif attributes.tempo <= 85:
        tags.append("slow")
    return list(dict.fromkeys(tags))
