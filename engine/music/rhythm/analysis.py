"""A track's rhythm in one streamed pass: beats and downbeats, sections, EBU R128 loudness.

`RhythmAnalyzer` wraps the converted BeatNet network (`network.BeatNetModel`); its `stream()` takes
float32 mono blocks at RHYTHM_SAMPLE_RATE as they are decoded (the scan feeds it from the same decode
as the music model, `engine.media.iter_audio_rates`) and `finish()` gives a `Rhythm`:
- the network's activations → `tracker.track_beats` (beats, bar positions, tempo, confidence);
- its log-frequency bands, beat-synchronous, with the music model's segment embeddings when given →
  `sections.section_starts`;
- `loudness.LoudnessStream` → integrated loudness and the short-term curve.
Memory: the activations (8 bytes per 20 ms), the bands at reduced precision and the loudness steps;
never the audio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from viml.engine.music.rhythm.loudness import CURVE_HOP, LoudnessStream
from viml.engine.music.rhythm.sections import section_starts
from viml.engine.music.rhythm.tracker import FPS, track_beats
from viml.engine.music.rhythm.types import Rhythm

RHYTHM_SAMPLE_RATE = 22050
# Bump when the tracker, the sections or the loudness change what they return: the catalog then
# measures its tracks again.
RHYTHM_VERSION = 1
# Which of BeatNet's three trainings analyses: chosen on the demo world (beat F-measure 0.687 / 0.791 /
# 0.795 for models 1 / 2 / 3, bench/beats.py), so the Frets on Fire songs stay unseen by the choice.
# Model 3 is the training that held out the Rock Corpus.
BEAT_MODEL = 3


def rhythm_id(model_id: str) -> str:
    """The catalog's name of a rhythm analysis: the beat model's id and this module's version."""
    return f"beatnet:{model_id}:rhythm-v{RHYTHM_VERSION}"


@dataclass
class RhythmAnalyzer:
    """The beat network plus our decoders; `id` names both (the catalog records it per content)."""

    model: object  # network.BeatNetModel

    @property
    def id(self) -> str:
        return rhythm_id(self.model.model_id)

    @staticmethod
    def installed_id() -> str:
        """The `id` an analyzer loaded now would have, from the converted files alone (no session)."""
        from viml.engine.music.rhythm.network import BeatNetModel

        return rhythm_id(BeatNetModel.installed_id(model=BEAT_MODEL))

    @classmethod
    def load(cls, device: str = "auto", threads: int | None = None) -> RhythmAnalyzer:
        """The converted BeatNet (raises a UserFacingError naming `viml convert-beatnet` when missing)."""
        from viml.engine.music.rhythm.network import BeatNetModel

        return cls(BeatNetModel.load(model=BEAT_MODEL, device=device, threads=threads))

    def stream(self) -> RhythmStream:
        return RhythmStream(self)


class RhythmStream:
    def __init__(self, analyzer: RhythmAnalyzer) -> None:
        self.activations = analyzer.model.stream()
        self.loudness = LoudnessStream(RHYTHM_SAMPLE_RATE)
        self.samples = 0

    def push(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        self.samples += len(block)
        self.activations.push(block)
        self.loudness.push(block)

    def finish(
        self, embeddings: np.ndarray | None = None, segment_starts: np.ndarray | None = None
    ) -> Rhythm:
        """The rhythm of everything pushed; the music model's segment embeddings sharpen the sections."""
        activations, bands = self.activations.finish()
        duration = self.samples / RHYTHM_SAMPLE_RATE
        beats = track_beats(activations, FPS)
        sections = section_starts(beats, bands, FPS, embeddings, segment_starts, duration=duration)
        return Rhythm(
            beats=beats,
            sections=sections,
            loudness=self.loudness.integrated(),
            loudness_curve=self.loudness.curve(),
            loudness_hop=CURVE_HOP,
            duration=duration,
        )


def analyze_rhythm(
    audio: np.ndarray,
    sample_rate: int = RHYTHM_SAMPLE_RATE,
    analyzer: RhythmAnalyzer | None = None,
    embeddings: np.ndarray | None = None,
    segment_starts: np.ndarray | None = None,
) -> Rhythm:
    """The rhythm of a whole float32 mono signal (resampled with soxr HQ when not at 22050 Hz)."""
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate != RHYTHM_SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sample_rate, RHYTHM_SAMPLE_RATE, quality="HQ").astype(np.float32)
    stream = (analyzer or RhythmAnalyzer.load()).stream()
    step = RHYTHM_SAMPLE_RATE * 10
    for first in range(0, len(audio), step):
        stream.push(audio[first : first + step])
    return stream.finish(embeddings, segment_starts)


def analyze_rhythm_file(path: str | os.PathLike, analyzer: RhythmAnalyzer | None = None) -> Rhythm:
    """Decode a file (PyAV, mono, 22050 Hz) block by block and analyse its rhythm; MediaError for files
    the media layer refuses."""
    from viml.engine.media import iter_audio

    stream = (analyzer or RhythmAnalyzer.load()).stream()
    for block in iter_audio(path, RHYTHM_SAMPLE_RATE):
        stream.push(block)
    return stream.finish()
