"""What a music model returns for one audio signal, segment by segment (the ViML music input)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from viml.engine.music.rhythm.types import Rhythm
from viml.engine.music.waveform import Waveform


@dataclass(frozen=True)
class MusicSegments:
    """Per-segment outputs of a music model, aligned with `engine.segments.segment_bounds`.

    Any backbone with a fixed-size segment embedding plugs into ViML through this type.
    """

    starts: np.ndarray  # float64 [S] segment start, seconds from the start of the audio
    ends: np.ndarray  # float64 [S] segment end, seconds
    embeddings: np.ndarray  # float32 [S, D] the music input of ViML
    tag_probabilities: dict[str, np.ndarray]  # vocabulary name (e.g. "MTT") -> float32 [S, T]
    tag_names: dict[str, list[str]]  # vocabulary name -> its T tag names
    # Measured sound descriptors, name -> float32 [S] (engine/music/descriptors.py: "loudness" in LUFS,
    # "brightness" in Hz, "onset_rate" in onsets/s). Empty for analyzers that measure none and for catalog
    # rows stored before descriptors existed.
    descriptors: dict[str, np.ndarray] = field(default_factory=dict)
    # Beats, sections and loudness when the analysis measured them (engine/music/rhythm), with the id of
    # the rhythm analysis; None otherwise.
    rhythm: Rhythm | None = None
    rhythm_id: str | None = None
    # The waveform for display (peak and RMS per 40 ms) when the analysis built it from its decode.
    waveform: Waveform | None = None

    def __post_init__(self) -> None:
        count = len(self.starts)
        if self.embeddings.shape[0] != count or len(self.ends) != count:
            raise ValueError("starts, ends and embeddings must have one row per segment")
        for vocabulary, probabilities in self.tag_probabilities.items():
            if probabilities.shape != (count, len(self.tag_names[vocabulary])):
                raise ValueError(f"tag probabilities for {vocabulary} do not match its tag names")
        for name, values in self.descriptors.items():
            if np.shape(values) != (count,):
                raise ValueError(f"descriptor {name!r} must have one value per segment")
