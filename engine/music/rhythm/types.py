"""What the rhythm analysis returns for one track (shared by the scan, the catalog, search and fitting)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Beats:
    """Tracked beats of a track. Times are seconds from the start of the audio, ascending."""

    times: np.ndarray  # float64 [B] every beat (downbeats included)
    positions: np.ndarray  # int64 [B] position of each beat in its bar, 1 = downbeat
    tempo: float  # beats per minute (NaN when no steady beat was found)
    tempo_confidence: float  # in [0, 1]: how strongly the activations support that tempo
    beats_per_bar: int  # 3 or 4 (0 when no beats)

    def __post_init__(self) -> None:
        if np.shape(self.times) != np.shape(self.positions):
            raise ValueError("one bar position per beat")

    @property
    def downbeats(self) -> np.ndarray:
        return self.times[self.positions == 1]

    @classmethod
    def empty(cls) -> Beats:
        return cls(np.zeros(0), np.zeros(0, np.int64), float("nan"), 0.0, 0)


@dataclass(frozen=True)
class Rhythm:
    """Per track: beats, section starts, EBU R128 loudness and its curve."""

    beats: Beats
    sections: np.ndarray  # float64 [N] section start times in seconds (0.0 first), on downbeats when known
    loudness: float  # integrated loudness, LUFS (EBU R128 / ITU-R BS.1770-4 gating); -inf for silence
    loudness_curve: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # Short-term loudness (3 s window, LUFS) every `loudness_hop` seconds, starting at 0.
    loudness_hop: float = 1.0
    duration: float = 0.0  # seconds of audio analysed
