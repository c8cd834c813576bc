"""musicnn's audio front end in numpy (the run time): log-compressed Slaney mel spectrogram, 3 s patches.

Parameters are musicnn's own (its `configuration.py` and training config): 16 kHz mono, 512-point
periodic-Hann STFT centred with reflect padding (librosa's behaviour when the models were trained),
hop 256, power 2, 96 Slaney mel bands from 0 to 8 kHz with Slaney area normalisation, then
log10(10000 * mel + 1), computed in float32 (musicnn's float16 cast overflows under NumPy 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class FrontEndConfig:
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float = 8000.0
    power: float = 2.0
    log_scale: float = 10000.0  # log10(log_scale * mel + 1)
    patch_frames: int = 187  # 3 s: librosa.time_to_frames(3, sr, n_fft, hop) + 1

    def as_dict(self) -> dict:
        return asdict(self)


FRONT_END = FrontEndConfig()


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above."""
    frequencies = np.atleast_1d(np.asarray(frequencies, dtype=np.float64))
    f_sp = 200.0 / 3
    mels = frequencies / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = frequencies >= min_log_hz
    mels[above] = min_log_mel + np.log(frequencies[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.atleast_1d(np.asarray(mels, dtype=np.float64))
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


@lru_cache(maxsize=4)
def mel_filterbank(config: FrontEndConfig = FRONT_END) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular Slaney filters, area-normalised (librosa `norm='slaney'`)."""
    fft_freqs = np.linspace(0, config.sample_rate / 2, config.n_fft // 2 + 1)
    mel_points = _mel_to_hz(
        np.linspace(_hz_to_mel(config.fmin)[0], _hz_to_mel(config.fmax)[0], config.n_mels + 2)
    )
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    weights.flags.writeable = False
    return weights.astype(np.float32)


@lru_cache(maxsize=4)
def _window(n_fft: int) -> np.ndarray:
    # Periodic Hann (scipy `get_window('hann', n, fftbins=True)`), as librosa uses.
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def log_mel_spectrogram(audio: np.ndarray, config: FrontEndConfig = FRONT_END) -> np.ndarray:
    """[frames, n_mels] float32 log-mel of mono audio already at `config.sample_rate`."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("empty audio")
    pad = config.n_fft // 2
    # Reflect padding needs more than `pad` samples; tiny inputs fall back to zero padding.
    padded = np.pad(audio, pad, mode="reflect" if audio.size > pad else "constant")
    frame_count = 1 + (padded.size - config.n_fft) // config.hop_length
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(frame_count, config.n_fft),
        strides=(padded.strides[0] * config.hop_length, padded.strides[0]),
        writeable=False,
    )
    spectrum = np.fft.rfft(frames * _window(config.n_fft), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    if config.power != 2.0:
        power = power ** (config.power / 2.0)
    mel = power @ mel_filterbank(config).T
    return np.log10(config.log_scale * mel + 1.0).astype(np.float32)


def repeat_pad(features: np.ndarray, frames: int) -> np.ndarray:
    """Tile a too-short spectrogram along time to `frames` rows (musicnn trained with 'repeat-pad')."""
    if len(features) >= frames:
        return features
    repeats = -(-frames // len(features))
    return np.tile(features, (repeats, 1))[:frames]


def patch_starts(length: int, patch_frames: int) -> list[int]:
    """Start frames of round(length / patch_frames) patches (at least one) spread evenly over a span.

    For a 10 s segment that is 3 patches of 3 s with ~0.5 s gaps, like musicnn's own non-overlapping
    taggram in cost, but aligned to the segment: no patch reaches outside it. A span shorter than a
    patch gets one patch (repeat-padded by the caller).
    """
    count = max(1, int(round(length / patch_frames)))
    last = length - patch_frames
    if count == 1 or last <= 0:
        return [max(0, last // 2)] if count == 1 else [0]
    return [int(round(i * last / (count - 1))) for i in range(count)]
