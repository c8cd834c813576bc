"""A track's waveform for display: peak and RMS level per 40 ms, one byte each, built while a scan decodes.

What editors draw under a clip: the outer shape is the peak level, the inner one the RMS (the body of the
sound). Levels are stored as dB codes (0 = at or below FLOOR_DB, 255 = 0 dBFS) so that quiet passages keep
their shape in one byte, where a linear byte would flatten everything under -40 dB; `heights` maps them
back to linear amplitude, what an editor's waveform shows. At POINTS_PER_SECOND a four-minute track is
12 KB: small next to its segment embeddings, and fine enough for a frame-accurate marker at 25 fps.

`WaveformBuilder` takes the mono blocks a decode produces (any sample rate) and never holds more than one
point's worth of audio, so the scan's memory does not grow with the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

POINTS_PER_SECOND = 25.0  # 40 ms a point: one frame at 25 fps; a whole number of samples at 8k-48k Hz
FLOOR_DB = -60.0  # code 0: this level or below (silence)
_CODES = 255


def level_codes(amplitude: np.ndarray) -> np.ndarray:
    """Linear amplitudes (>= 0) -> uint8 dB codes."""
    with np.errstate(divide="ignore"):
        decibels = 20.0 * np.log10(np.maximum(np.asarray(amplitude, np.float64), 0.0))
    codes = np.round((decibels - FLOOR_DB) / -FLOOR_DB * _CODES)
    return np.clip(np.nan_to_num(codes, nan=0.0, neginf=0.0), 0, _CODES).astype(np.uint8)


def _amplitude_table() -> np.ndarray:
    codes = np.arange(_CODES + 1, dtype=np.float64)
    amplitude = 10.0 ** ((codes / _CODES * -FLOOR_DB + FLOOR_DB) / 20.0)
    return np.where(codes > 0, amplitude, 0.0).astype(np.float32)


_AMPLITUDES = _amplitude_table()  # one per code: a lookup, not a power per point, when a cell is drawn


def code_amplitudes(codes: np.ndarray) -> np.ndarray:
    """uint8 dB codes -> linear amplitude in [0, 1] (code 0 is silence: exactly 0)."""
    return _AMPLITUDES[np.asarray(codes, np.uint8)]


@dataclass(frozen=True)
class Waveform:
    rate: float  # points per second
    peak: np.ndarray = field(compare=False)  # uint8 [N] dB code of the highest |sample| in each point
    rms: np.ndarray = field(compare=False)  # uint8 [N] dB code of the RMS of each point

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a waveform needs a rate > 0 points per second, got {self.rate}")
        if np.shape(self.peak) != np.shape(self.rms) or np.ndim(self.peak) != 1:
            raise ValueError("a waveform's peak and rms must be one-dimensional and of one length")

    def __len__(self) -> int:
        return len(self.peak)

    @property
    def duration(self) -> float:
        return len(self.peak) / self.rate

    def heights(self) -> tuple[np.ndarray, np.ndarray]:
        """(peak, rms) as linear amplitudes in [0, 1], what a waveform display draws."""
        return code_amplitudes(self.peak), code_amplitudes(self.rms)

    def binned(
        self, bins: int, start: float = 0.0, end: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(peak, rms) heights over `bins` equal spans of [start, end) seconds (start >= 0): the highest
        peak and the root mean square of the RMS in each span, so a narrow display keeps every transient;
        a span wider than the waveform's points shows the point under its middle; past the end, 0."""
        end = self.duration if end is None else end
        peak, rms = self.heights()
        count = len(peak)
        out_peak, out_rms = np.zeros(max(bins, 0), np.float32), np.zeros(max(bins, 0), np.float32)
        if bins <= 0 or not end > start or not count:
            return out_peak, out_rms
        if (end - start) * self.rate < bins:  # more bins than points: pick
            middles = np.floor((start + (np.arange(bins) + 0.5) * (end - start) / bins) * self.rate)
            inside = middles < count
            index = middles[inside].astype(np.int64)
            out_peak[inside], out_rms[inside] = peak[index], rms[index]
            return out_peak, out_rms
        # A point belongs to the span its start is in: span k begins at the first point at or after its
        # start time. Edges at least one point apart stay strictly increasing: contiguous, non-empty spans.
        edges = np.ceil(np.linspace(start, end, bins + 1) * self.rate - 1e-9).astype(np.int64)
        inside = edges[:-1] < count
        firsts = edges[:-1][inside]
        if not len(firsts):
            return out_peak, out_rms
        stop = min(int(edges[-1]), count)
        lengths = np.diff(np.append(firsts, stop))
        out_peak[inside] = np.maximum.reduceat(peak[:stop], firsts)
        squares = np.add.reduceat(np.square(rms[:stop], dtype=np.float64), firsts)
        out_rms[inside] = np.sqrt(squares / lengths)
        return out_peak, out_rms


class WaveformBuilder:
    """Peak and RMS per point from mono float blocks at `sample_rate`, pushed in order."""

    def __init__(self, sample_rate: int, points_per_second: float = POINTS_PER_SECOND) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        self.hop = max(1, round(sample_rate / points_per_second))
        self.rate = sample_rate / self.hop
        self._carry = np.zeros(0, np.float32)
        self._peaks: list[np.ndarray] = []
        self._rms: list[np.ndarray] = []

    def push(self, block: np.ndarray) -> None:
        samples = np.asarray(block, np.float32).reshape(-1)
        if self._carry.size:
            samples = np.concatenate([self._carry, samples])
        whole = samples.size // self.hop * self.hop
        if whole:
            points = samples[:whole].reshape(-1, self.hop)
            self._add(points)
        self._carry = samples[whole:].copy()

    def _add(self, points: np.ndarray) -> None:
        self._peaks.append(level_codes(np.abs(points).max(axis=1)))
        self._rms.append(level_codes(np.sqrt(np.mean(np.square(points, dtype=np.float64), axis=1))))

    def finish(self) -> Waveform:
        """The waveform of everything pushed; a last partial point counts when it holds any audio."""
        if self._carry.size:
            self._add(self._carry[None, :])
            self._carry = np.zeros(0, np.float32)
        join = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.uint8)  # noqa: E731
        return Waveform(self.rate, join(self._peaks), join(self._rms))


def waveform_of(audio: np.ndarray, sample_rate: int) -> Waveform:
    """The waveform of a whole mono signal in memory."""
    builder = WaveformBuilder(sample_rate)
    builder.push(audio)
    return builder.finish()
