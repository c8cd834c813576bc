"""Measured sound descriptors per segment, and the prompt concepts read from them.

The streaming analysis (`runtime._StreamingAnalysis`) hands each segment's rows of musicnn's log-mel
spectrogram to `segment_descriptors`: no second decode, nothing held beyond the segment. The rows are
`L = log10(10000 * mel + 1)` of 96 Slaney-normalised mel bands of the 16 kHz mono signal (power 2,
512-point periodic Hann, hop 256), so `mel = (10**L - 1) / 10000` is the band power back.

Per segment (`DESCRIPTORS`, float32 [S] each in `MusicSegments.descriptors`):
- `loudness`, LUFS: ITU-R BS.1770 loudness of the segment, ungated, mono, with the K-weighting applied
  per mel band:  -0.691 + 10 log10( mean_t  sum_m v_m mel[t, m] ).  v_m = c_m * k_m * 16 / (3 N^2):
  c_m = (f[m+2] - f[m]) / 2 undoes Slaney's area normalisation (the unnormalised triangles sum to 1
  over frequency, so sum_m c_m mel[t, m] is the frame's one-sided power sum_k |X_k|^2), k_m is the mean
  of the BS.1770 K-filter's power response (its 48 kHz biquads) under band m's triangle, and
  16 / (3 N^2) turns a Hann-windowed N-point power sum into the mean square of the samples (Parseval;
  mean w^2 = 3/8). A full-scale 1 kHz sine reads -3.0 LUFS. Floor: -100 LUFS (silence; the float32 log
  resolves about -110).
- `brightness`, Hz: magnitude spectral centroid of the segment (librosa's definition, on the mel
  bands): sum_m f_m a_m c_m / sum_m a_m c_m, with a_m = mean_t sqrt(mel[t, m]) (the magnitude per FFT
  bin: the normalised mel power is the mean power per bin) and f_m the band's centre frequency.
  NaN for digital silence.
- `onset_rate`, onsets per second: peaks of the spectral flux flux[t] = mean_m max(0, L[t] - L[t-1])
  that are the maximum within +-3 frames (+-48 ms) and exceed the flux's mean within +-6 frames by
  ONSET_DELTA (log10 units); "busyness". Note attacks, drum hits and chord changes count; steady
  tones, noise and silence do not.

Vocal presence is the tagger's (MTT vocals/female/male/choir, MSD female vocalists...), and tempo is
not measured here.

`descriptor_columns` turns a library's descriptors into concept scores in [0, 1] per segment (`CONCEPTS`,
formulas in its docstring); their prompt wordings are in the tag table (vocabulary SOUND).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from viml.engine.music.frontend import FRONT_END, FrontEndConfig, _hz_to_mel, _mel_to_hz

DESCRIPTORS = ("loudness", "brightness", "onset_rate")
UNITS = {"loudness": "LUFS", "brightness": "Hz", "onset_rate": "onsets/s"}

LOUDNESS_FLOOR = -100.0  # LUFS given to silence
SILENT_LUFS = -70.0  # below this a segment is silence: it scores 0 on every concept
ONSET_DELTA = 0.3  # log10 units of mean positive flux above the local mean for an onset
_PEAK_FRAMES = 3  # an onset is the flux maximum within +-3 frames
_MEAN_FRAMES = 6  # ... and beats the flux mean within +-6 frames by ONSET_DELTA

# BS.1770-4 K-weighting at 48 kHz: a high shelf (+4 dB above ~1.7 kHz) then a high-pass (~38 Hz).
_K_FILTERS = (
    ((1.53512485958697, -2.69169618940638, 1.19839281085285), (1.0, -1.69065929318241, 0.73248077421585)),
    ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621)),
)


def k_weighting_power(frequencies: np.ndarray) -> np.ndarray:
    """|H(f)|^2 of the BS.1770 K-filter (both stages, 48 kHz biquads) at `frequencies` Hz."""
    z = np.exp(-2j * np.pi * np.asarray(frequencies, dtype=np.float64) / 48000.0)
    gain = np.ones_like(z)
    for b, a in _K_FILTERS:
        gain *= (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return np.abs(gain) ** 2


@lru_cache(maxsize=4)
def _band_weights(config: FrontEndConfig = FRONT_END) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v: K-weighted mean-square per unit of mel power, c: band widths in Hz, f: band centres in Hz)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(config.fmin)[0], _hz_to_mel(config.fmax)[0], config.n_mels + 2))
    widths = (edges[2:] - edges[:-2]) / 2.0
    centres = edges[1:-1]
    bins = np.linspace(0, config.sample_rate / 2, config.n_fft // 2 + 1)
    ramps = edges[:, None] - bins[None, :]
    triangles = np.maximum(
        0, np.minimum(-ramps[:-2] / np.diff(edges)[:-1, None], ramps[2:] / np.diff(edges)[1:, None])
    )
    k = (triangles * k_weighting_power(bins)).sum(1) / np.maximum(triangles.sum(1), 1e-12)
    v = widths * k * 16.0 / (3.0 * config.n_fft**2)
    return v, widths, centres


def segment_descriptors(rows: np.ndarray, config: FrontEndConfig = FRONT_END) -> dict[str, float]:
    """The descriptors of one segment from its log-mel rows [frames, n_mels] (musicnn's front end)."""
    rows = np.asarray(rows, dtype=np.float32)
    v, widths, centres = _band_weights(config)
    mel = np.maximum((np.power(10.0, rows, dtype=np.float64) - 1.0) / config.log_scale, 0.0)
    mean_square = float((mel @ v).mean()) if len(mel) else 0.0
    loudness = -0.691 + 10.0 * np.log10(mean_square) if mean_square > 0 else LOUDNESS_FLOOR
    magnitude = np.sqrt(mel).mean(0) * widths if len(mel) else np.zeros_like(widths)
    total = float(magnitude.sum())
    brightness = float((magnitude * centres).sum() / total) if total > 0 else float("nan")
    seconds = len(rows) * config.hop_length / config.sample_rate
    return {
        "loudness": max(float(loudness), LOUDNESS_FLOOR),
        "brightness": brightness,
        "onset_rate": _onsets(rows) / seconds if seconds > 0 else 0.0,
    }


def _onsets(rows: np.ndarray) -> int:
    if len(rows) < 3:
        return 0
    flux = np.maximum(np.diff(rows, axis=0), 0).mean(1)
    n = len(flux)
    padded = np.pad(flux, _PEAK_FRAMES, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * _PEAK_FRAMES + 1)
    # the maximum of its window, and the first of equal values (a plateau counts once)
    is_peak = (flux >= windows.max(1)) & (flux > windows[:, :_PEAK_FRAMES].max(1))
    sums = np.concatenate([[0.0], np.cumsum(flux)])
    low = np.maximum(np.arange(n) - _MEAN_FRAMES, 0)
    high = np.minimum(np.arange(n) + _MEAN_FRAMES + 1, n)
    local_mean = (sums[high] - sums[low]) / (high - low)
    return int(np.count_nonzero(is_peak & (flux >= local_mean + ONSET_DELTA)))


# --- concepts --------------------------------------------------------------------------------------

CONCEPTS = (
    "loud",
    "quiet",
    "bright",
    "dark",
    "busy",
    "sparse",
    "building",
    "calm then explosive",
    "contrast",
)
# Their prompt wordings are the concepts' mentions in the one tag table (engine/text/tag_table.json,
# vocabulary SOUND), where MTT's own loud / quiet tags share the concepts loud and quiet.

# Library normalisation: the 5th..95th percentile range maps to 0..1, widened to at least this span.
PERCENTILES = (5.0, 95.0)
MIN_SPAN = {"loudness": 6.0, "brightness": 0.5, "onset_rate": 1.0}  # LU, octaves, onsets/s
BUILD_LOOKBACK = 6  # segments (60 s of 10 s segments) a build is measured over
BUILD_RISE = 10.0  # LU above the quietest of those earlier segments that scores 1
ARC_FLOOR = 4.0  # LU of rise (or range) within a track that still scores 0
ARC_SPAN = 12.0  # ... and the LU above that floor that scores 1 (16 LU)


def descriptor_columns(
    descriptors_by_segment: Mapping[str, np.ndarray],
    track_starts: np.ndarray,
    track_counts: np.ndarray,
) -> dict[str, np.ndarray]:
    """Concept scores in [0, 1], float32 [N] per name in CONCEPTS, for a library's N segments.

    `descriptors_by_segment`: name -> [N] (as stored; NaN where a segment has no descriptors, e.g. a
    catalog row analysed before they existed); tracks are the rows starts[i] .. starts[i]+counts[i]-1.
    A segment is *audible* when its loudness is finite and >= SILENT_LUFS; any other segment scores 0
    on every concept. With norm(x) = clip((x - lo) / (hi - lo), 0, 1), lo/hi the PERCENTILES of x over
    the library's audible segments (widened around their middle to MIN_SPAN, so a uniform library sits
    near 0.5 instead of stretching noise to 0..1):
    - loud = norm(loudness), quiet = 1 - loud;
    - bright = norm(log2 brightness), dark = 1 - bright (octaves: perception is logarithmic);
    - busy = norm(onset_rate), sparse = 1 - busy;
    - building[i] = clip((L[i] - min L[j]) / BUILD_RISE, 0, 1) over the track's audible segments j in
      i-BUILD_LOOKBACK .. i-1 (0 for the first): energy rising into the segment (a 10 LU crescendo
      within a minute scores 1, a flat track 0);
    - calm then explosive (track level, the same for all its audible segments) =
      clip((rise - ARC_FLOOR) / ARC_SPAN, 0, 1), rise = max over i of L[i] - min L[j < i] (audible):
      the largest quiet-to-loud climb in time order;
    - contrast (track level) = the same on max L - min L (either order).
    A concept whose descriptor is NaN for a segment (brightness of digital silence) scores 0 there.
    """
    starts = np.asarray(track_starts, dtype=np.int64)
    counts = np.asarray(track_counts, dtype=np.int64)
    total = int(counts.sum()) if len(counts) else 0
    loudness = _column(descriptors_by_segment, "loudness", total)
    audible = np.isfinite(loudness) & (loudness >= SILENT_LUFS)
    out: dict[str, np.ndarray] = {}
    for name, low, high, values in (
        ("loudness", "quiet", "loud", loudness),
        ("brightness", "dark", "bright", np.log2(_column(descriptors_by_segment, "brightness", total))),
        ("onset_rate", "sparse", "busy", _column(descriptors_by_segment, "onset_rate", total)),
    ):
        usable = audible & np.isfinite(values)
        scaled = _normalised(values, usable, MIN_SPAN[name])
        out[high] = np.where(usable, scaled, 0.0)
        out[low] = np.where(usable, 1.0 - scaled, 0.0)
    building, rise, spread = _arcs(np.where(audible, loudness, np.nan), starts, counts)
    out["building"] = building
    out["calm then explosive"] = np.where(audible, np.clip((rise - ARC_FLOOR) / ARC_SPAN, 0, 1), 0.0)
    out["contrast"] = np.where(audible, np.clip((spread - ARC_FLOOR) / ARC_SPAN, 0, 1), 0.0)
    return {name: out[name].astype(np.float32) for name in CONCEPTS}


def _column(descriptors: Mapping[str, np.ndarray], name: str, total: int) -> np.ndarray:
    values = descriptors.get(name)
    if values is None:
        return np.full(total, np.nan)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (total,):
        raise ValueError(f"descriptor {name!r} has shape {values.shape}, expected ({total},)")
    return values


def _normalised(values: np.ndarray, usable: np.ndarray, min_span: float) -> np.ndarray:
    if not usable.any():
        return np.zeros_like(values)
    low, high = np.percentile(values[usable], PERCENTILES)
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    with np.errstate(invalid="ignore"):
        return np.clip((values - low) / (high - low), 0.0, 1.0)


def _arcs(loudness: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """(building per segment, each track's largest in-order rise, each track's range), broadcast to its
    segments, for the whole library at once (NaN: not audible). Vectorised over tracks: a library of
    5,000 tracks takes milliseconds, not seconds."""
    total = len(loudness)
    building, rise, spread = np.zeros(total), np.zeros(total), np.zeros(total)
    if total == 0 or len(counts) == 0:
        return building, rise, spread
    track = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(total) - np.repeat(starts, counts)
    audible = np.isfinite(loudness)
    # building: the quietest audible segment among the BUILD_LOOKBACK before, within the track.
    earlier = np.full(total, np.inf)
    for lag in range(1, BUILD_LOOKBACK + 1):
        shifted = np.full(total, np.inf)
        shifted[lag:] = np.where(audible[:-lag], loudness[:-lag], np.inf)
        shifted[position < lag] = np.inf
        earlier = np.minimum(earlier, shifted)
    has_earlier = audible & np.isfinite(earlier)
    building[has_earlier] = np.clip((loudness[has_earlier] - earlier[has_earlier]) / BUILD_RISE, 0.0, 1.0)
    # rise: L[i] - min of L[j < i] within the track. A per-track offset makes one running minimum restart at
    # every track: later tracks sit far below earlier ones.
    offset = track * 1e6
    values = np.where(audible, loudness, np.inf) - offset
    running = np.minimum.accumulate(values)
    before = np.full(total, np.inf)
    before[1:] = running[:-1]
    before[position == 0] = np.inf
    climbs = np.where(audible & np.isfinite(before), (loudness - offset) - before, 0.0)
    track_rise = np.maximum.reduceat(np.maximum(climbs, 0.0), starts)
    with np.errstate(invalid="ignore"):
        highest = np.fmax.reduceat(np.where(audible, loudness, np.nan), starts)
        lowest = np.fmin.reduceat(np.where(audible, loudness, np.nan), starts)
    track_spread = np.nan_to_num(highest - lowest, nan=0.0)
    return building, np.repeat(track_rise, counts), np.repeat(track_spread, counts)
