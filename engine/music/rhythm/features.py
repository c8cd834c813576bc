"""BeatNet's input features in numpy: madmom's log-filtered spectrogram and its positive difference.

BeatNet (1.1.3, `log_spect.py`) builds them with madmom at 22050 Hz, mono: frames of 1411 samples every
441 (50 fps), Hann window, FFT of the frame's own length keeping its first 705 bins, a logarithmic
triangular filterbank (24 bands per octave, 30 Hz to 17 kHz, unique bins, each filter summing to 1),
log10(1 + x), and the half-wave rectified difference to the previous frame, stacked after the bands:
272 values per frame = 136 log bands + 136 positive differences. This module reproduces that
arithmetic (and madmom's dtypes: float64 FFT of a float32 signal, complex64 STFT, float32 from the
magnitudes on) without madmom, whose bundled models are CC BY-NC-SA and which does not build here.

Frame placement is madmom's `FramedSignal` for BeatNet's call (origin 0, end "normal"): frame i is
centred on sample i * 441 (it covers samples i * 441 - 705 ... i * 441 + 705, zeros outside the signal),
and there are ceil(len / 441) frames, so row i describes time i / 50 s.

The first BANDS columns of every row are the log bands alone (`feature_bands(rows)`): the lead's section
analysis reads them without the difference half.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class BeatNetFeatureConfig:
    sample_rate: int = 22050
    frame_size: int = 1411  # int(0.064 * 22050): BeatNet's 64 ms window
    hop_size: int = 441  # int(0.020 * 22050): 50 frames per second
    bands_per_octave: int = 24
    fmin: float = 30.0
    fmax: float = 17000.0
    fref: float = 440.0  # madmom's A4 tuning of the log grid
    diff_ratio: float = 0.5

    @property
    def fps(self) -> float:
        return self.sample_rate / self.hop_size

    @property
    def num_bins(self) -> int:
        """STFT bins madmom keeps: fft_size >> 1 (Nyquist excluded)."""
        return self.frame_size >> 1

    def as_dict(self) -> dict:
        return asdict(self)


BEATNET_FEATURES = BeatNetFeatureConfig()
# Log bands the filterbank yields for BEATNET_FEATURES (tests/test_beatnet.py derives it independently);
# a feature row is [BANDS log bands, BANDS positive differences].
BANDS = 136
FEATURE_DIM = 2 * BANDS
# Rows are computed in blocks of this many, aligned on multiples of it from row 0, in one shot and
# streamed alike: the filterbank product (BLAS) then sees the same shapes and gives the same bits.
# ~5 s of audio; bounds the float64 frame buffer to ~3 MB whatever the signal's length.
BLOCK_ROWS = 256


def feature_bands(rows: np.ndarray) -> np.ndarray:
    """The log-band half of feature rows [T, 272] -> [T, 136] (a view)."""
    return rows[:, :BANDS]


def num_frames(num_samples: int, config: BeatNetFeatureConfig = BEATNET_FEATURES) -> int:
    """madmom's frame count for end="normal": frames while the centre sample lies in the signal."""
    return -(-num_samples // config.hop_size)


def bin_frequencies(config: BeatNetFeatureConfig = BEATNET_FEATURES) -> np.ndarray:
    """Frequencies madmom assigns to the STFT bins: k * sr / (2 * num_bins).

    With an odd frame (1411) this is k * 22050 / 1410, not the true k * 22050 / 1411; the filterbank
    was built on these values, so they are kept.
    """
    return np.arange(config.num_bins) * (config.sample_rate / (2.0 * config.num_bins))


def log_frequencies(config: BeatNetFeatureConfig = BEATNET_FEATURES) -> np.ndarray:
    """fref * 2 ** (k / bands_per_octave) for every integer k with fmin <= frequency <= fmax."""
    per_octave = config.bands_per_octave
    first = np.floor(np.log2(config.fmin / config.fref) * per_octave)
    last = np.ceil(np.log2(config.fmax / config.fref) * per_octave)
    frequencies = config.fref * 2.0 ** (np.arange(first, last) / per_octave)
    return frequencies[(frequencies >= config.fmin) & (frequencies <= config.fmax)]


def nearest_bins(frequencies: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Index of the closest bin frequency for each frequency (a tie goes to the upper bin), as madmom's
    `frequencies2bins`; frequencies past the last bin map to it."""
    upper = np.clip(np.searchsorted(bins, frequencies), 1, len(bins) - 1)
    closer_to_lower = frequencies - bins[upper - 1] < bins[upper] - frequencies
    return upper - closer_to_lower.astype(upper.dtype)


@lru_cache(maxsize=4)
def log_filterbank(config: BeatNetFeatureConfig = BEATNET_FEATURES) -> np.ndarray:
    """[num_bins, bands] float32: overlapping triangles on the unique bins nearest the log grid.

    Band j rises from bin b[j] (weight 0) to its peak 1 at b[j+1] and falls to b[j+2] (weight 0), over
    the sorted unique bins b; each triangle is scaled (in float32) to sum to 1.
    """
    centres = np.unique(nearest_bins(log_frequencies(config), bin_frequencies(config)))
    if len(centres) < 3:
        raise ValueError("the frequency range holds fewer than 3 distinct bins")
    bank = np.zeros((config.num_bins, len(centres) - 2), np.float32)
    for band, (start, peak, stop) in enumerate(zip(centres, centres[1:], centres[2:], strict=False)):
        rising = np.linspace(0.0, 1.0, peak - start, endpoint=False)
        falling = np.linspace(1.0, 0.0, stop - peak, endpoint=False)
        triangle = np.concatenate([rising, falling]).astype(np.float32)
        bank[start:stop, band] = triangle / triangle.sum(dtype=np.float32)
    bank.setflags(write=False)
    return bank


def diff_frames(config: BeatNetFeatureConfig = BEATNET_FEATURES) -> int:
    """Frames back the difference looks: the distance from the frame centre to where the Hann window
    first exceeds diff_ratio of its maximum, in hops, rounded, at least 1 (1 for BeatNet)."""
    window = np.hanning(config.frame_size)
    first_above = int(np.argmax(window > config.diff_ratio * window.max()))
    return int(max(1, round((config.frame_size / 2 - first_above) / config.hop_size)))


def _log_bands(frames: np.ndarray, config: BeatNetFeatureConfig) -> np.ndarray:
    """Frames [N, frame_size] float32 -> log10(1 + filtered magnitude) [N, BANDS] float32."""
    window = _window(config.frame_size)
    spectrum = np.fft.rfft(frames * window, axis=1)[:, : config.num_bins].astype(np.complex64)
    # Each band covers a few bins: a sparse product, single-threaded by nature. A dense BLAS product
    # would be faster on one thread but spins every core's BLAS thread, tripling its CPU time in a scan.
    filtered = np.ascontiguousarray((_sparse_filterbank(config).T @ np.abs(spectrum).T).T, dtype=np.float32)
    filtered += np.float32(1.0)
    return np.log10(filtered, out=filtered)


@lru_cache(maxsize=4)
def _sparse_filterbank(config: BeatNetFeatureConfig):
    from scipy.sparse import csr_matrix

    return csr_matrix(log_filterbank(config))


@lru_cache(maxsize=4)
def _window(frame_size: int) -> np.ndarray:
    return np.hanning(frame_size)  # float64: madmom multiplies the float32 frame by it in float64


class _SignalWindow:
    """The received part of a signal from sample `offset` on, framed as madmom frames it."""

    def __init__(self, config: BeatNetFeatureConfig) -> None:
        self.config = config
        self.samples = np.zeros(0, np.float32)
        self.offset = 0

    def log_bands(self, first: int, stop: int) -> np.ndarray:
        """Log bands of rows [first, stop); samples outside [0, received) count as zeros."""
        hop, size = self.config.hop_size, self.config.frame_size
        out = np.empty((stop - first, BANDS), np.float32)
        for block in range(first, stop, BLOCK_ROWS):
            rows = min(BLOCK_ROWS, stop - block)
            begin = block * hop - size // 2  # first sample of frame `block`
            span = np.zeros((rows - 1) * hop + size, np.float32)
            lo = max(begin, self.offset)
            hi = min(begin + len(span), self.offset + len(self.samples))
            if hi > lo:
                span[lo - begin : hi - begin] = self.samples[lo - self.offset : hi - self.offset]
            frames = np.lib.stride_tricks.sliding_window_view(span, size)[::hop]
            out[block - first : block - first + rows] = _log_bands(frames, self.config)
        return out

    def forget_before(self, sample: int) -> None:
        if sample > self.offset:
            self.samples = self.samples[sample - self.offset :].copy()
            self.offset = sample


def _stack_differences(bands: np.ndarray, previous: np.ndarray, lag: int) -> np.ndarray:
    """[bands | max(bands[t] - bands[t - lag], 0)]. `previous` holds the (up to `lag`) band rows just
    before `bands`; rows with no row `lag` before them get 0, as at madmom's start of signal."""
    difference = np.zeros_like(bands)
    start = max(0, lag - len(previous))  # first row that has a row `lag` before it
    if start < len(bands):
        history = np.concatenate([previous, bands])
        lagged = history[len(previous) + start - lag : len(previous) + len(bands) - lag]
        difference[start:] = np.maximum(bands[start:] - lagged, 0)
    return np.hstack([bands, difference])


def log_filtered_spectrogram(
    audio: np.ndarray, config: BeatNetFeatureConfig = BEATNET_FEATURES
) -> np.ndarray:
    """BeatNet's features [T, 272] float32 of a whole float32 mono signal at 22050 Hz, T = ceil(len/441)."""
    stream = FeatureStream(config)
    head = stream.push(audio)
    return np.concatenate([head, stream.finish()])


class FeatureStream:
    """`log_filtered_spectrogram` of a signal arriving in blocks: `push` returns the rows no later
    sample can change, `finish` the rest; joined, they equal the one-shot rows bit for bit. Only the
    samples that rows still to come reach are kept (one frame plus up to a block of rows)."""

    def __init__(self, config: BeatNetFeatureConfig = BEATNET_FEATURES) -> None:
        self.config = config
        self.lag = diff_frames(config)
        self._signal = _SignalWindow(config)
        self._previous = np.zeros((0, BANDS), np.float32)  # last `lag` band rows, for the difference
        self.received = 0
        self.next_row = 0
        self.finished = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono float32 samples; returns the rows now final ([N, 272], N a multiple of BLOCK_ROWS,
        possibly 0)."""
        if self.finished:
            raise ValueError("push after finish")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono audio (1-D array), got shape {samples.shape}")
        signal = self._signal
        signal.samples = np.concatenate([signal.samples, samples])  # a copy: callers may reuse buffers
        self.received += len(samples)
        # Row i is final once its last sample, i * hop + frame_size // 2, has arrived.
        reach = self.config.frame_size - self.config.frame_size // 2
        ready = max(0, (self.received - reach) // self.config.hop_size + 1)
        return self._rows(ready // BLOCK_ROWS * BLOCK_ROWS)

    def finish(self) -> np.ndarray:
        """The remaining rows, up to ceil(received / hop), the end zero-padded as madmom pads it."""
        if self.finished:
            raise ValueError("finish called twice")
        rows = self._rows(num_frames(self.received, self.config))
        self.finished = True
        return rows

    def _rows(self, stop: int) -> np.ndarray:
        if stop <= self.next_row:
            return np.zeros((0, FEATURE_DIM), np.float32)
        bands = self._signal.log_bands(self.next_row, stop)
        rows = _stack_differences(bands, self._previous, self.lag)
        self._previous = np.concatenate([self._previous, bands])[-self.lag :]
        self.next_row = stop
        self._signal.forget_before(stop * self.config.hop_size - self.config.frame_size // 2)
        return rows
