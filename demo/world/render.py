"""Render General MIDI to audio with the soundfont pretty_midi ships (TimGM6mb.sf2) via tinysoundfont.

Offline rendering needs no audio device: the sequencer is driven by `Synth.generate`, ~0.1 s per 30 s.
`render_piece_audio` is the one-call entry point for others (e.g. reference audio for music models).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pretty_midi
from viml.demo.world.attributes import PieceAttributes, sample_attributes
from viml.demo.world.compose import compose

SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
DEFAULT_SAMPLE_RATE = 24000
# Seconds of fade-out at the end, so a piece cut mid-phrase ends like a track, not a click.
FADE_SECONDS = 1.5
# Peak level after normalisation: loud enough to tag, with headroom for lossy encoders.
PEAK = 0.89


@lru_cache(maxsize=1)
def _soundfont_bytes() -> bytes:
    return SOUNDFONT.read_bytes()


def render_midi(
    midi: pretty_midi.PrettyMIDI, seconds: float, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> np.ndarray:
    """Stereo float32 [samples, 2] of exactly `seconds`, faded out at the end (no normalisation)."""
    import tinysoundfont  # imported here: the optional dependency is only needed to render

    buffer = io.BytesIO()
    midi.write(buffer)
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    synth.sfload(_soundfont_bytes())
    sequencer = tinysoundfont.Sequencer(synth)
    sequencer.add(tinysoundfont.midi.load_memory(buffer.getvalue()))
    count = int(round(seconds * sample_rate))
    audio = np.frombuffer(synth.generate(count), dtype=np.float32).reshape(-1, 2)[:count].copy()
    fade = min(count, int(FADE_SECONDS * sample_rate))
    audio[count - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    return audio


def render_attributes(
    attributes: PieceAttributes, seconds: float, seed: int, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> np.ndarray:
    """Compose and render a piece: stereo float32 [samples, 2], peak-normalised, loudness from energy."""
    midi = compose(attributes, seconds, np.random.default_rng([seed, 1]))
    audio = render_midi(midi, seconds, sample_rate)
    peak = float(np.abs(audio).max())
    if peak > 0:
        # Calm pieces stay quieter so energy is audible as level, not only as density.
        audio *= (PEAK * (0.45 + 0.55 * attributes.energy)) / peak
    return audio


def render_piece_audio(
    attributes: PieceAttributes | str,
    seconds: float = 30.0,
    seed: int = 0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    mono: bool = True,
) -> np.ndarray:
    """Audio of one generated piece: float32 [samples] (mono) or [samples, 2].

    `attributes` is either full `PieceAttributes` or a style name (see `styles.STYLE_NAMES`), in which
    case tempo, mode, key and energy are drawn from `seed`. Deterministic for (attributes, seed).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if isinstance(attributes, str):
        attributes = sample_attributes(np.random.default_rng([seed, 0]), style=attributes)
    audio = render_attributes(attributes, seconds, seed, sample_rate)
    return audio.mean(axis=1) if mono else audio
