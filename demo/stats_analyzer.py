"""A small analyzer from real audio statistics, for scan-mechanics tests and benchmarks only.

It decodes the file for real (`engine.media.read_audio`, as the music model does) and describes each 10 s segment by its log band energies, so hostile
files fail the way they would with the music model, and embeddings are a deterministic function of the
audio. It is not a music model: `viml scan` uses the real one unless told otherwise. `GatedAnalyzer` lets a
test decide how far a scan may get (the kill -9 test).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
from viml.core.errors import MediaError
from viml.engine.music.types import MusicSegments
from viml.engine.music.waveform import waveform_of
from viml.engine.segments import segment_bounds

SAMPLE_RATE = 16000
BANDS = 32
_FRAME = 1024
MIN_SAMPLES = 512  # the music model's FFT size: it refuses anything shorter, so this does too
TAGS = ["loud", "quiet", "bright", "dark", "bassy", "busy"]


class StatsAnalyzer:
    id = "stats-v1"
    waveforms = True  # like the music model's analysis, it builds each file's waveform from its decode

    def analyze_file(self, path: str) -> MusicSegments:
        audio = decode_mono(path)
        return replace(self.analyze(audio, SAMPLE_RATE), waveform=waveform_of(audio, SAMPLE_RATE))

    def analyze(self, audio: np.ndarray, sample_rate: int) -> MusicSegments:
        duration = len(audio) / sample_rate
        if duration <= 0:
            raise MediaError("<audio>", "no audio samples")
        bounds = segment_bounds(0.0, duration)
        edges = np.geomspace(20, sample_rate / 2, BANDS + 1)
        freqs = np.fft.rfftfreq(_FRAME, 1 / sample_rate)
        band_of = np.clip(np.searchsorted(edges, freqs) - 1, 0, BANDS - 1)
        embeddings, tags = [], []
        for segment in bounds:
            piece = audio[int(segment.start * sample_rate) : int(segment.end * sample_rate)]
            count = max(1, len(piece) // _FRAME)
            frames = np.zeros((count, _FRAME), np.float32)
            usable = piece[: count * _FRAME]
            frames.reshape(-1)[: len(usable)] = usable
            power = np.abs(np.fft.rfft(frames * np.hanning(_FRAME), axis=1)) ** 2
            bands = np.zeros((count, BANDS))
            np.add.at(bands.T, band_of, power.T)
            log_bands = np.log10(bands + 1e-9)
            embeddings.append(np.concatenate([log_bands.mean(0), log_bands.std(0)]))
            rms = float(np.sqrt(np.mean(piece**2))) if len(piece) else 0.0
            spectrum = bands.mean(0)
            centroid = float((spectrum * np.arange(BANDS)).sum() / (spectrum.sum() + 1e-12)) / BANDS
            bass = float(spectrum[:8].sum() / (spectrum.sum() + 1e-12))
            flux = float(np.mean(np.abs(np.diff(log_bands, axis=0)))) if count > 1 else 0.0
            loud = _sigmoid((rms - 0.1) * 30)
            tags.append([loud, 1 - loud, _sigmoid((centroid - 0.5) * 10), _sigmoid((0.5 - centroid) * 10),
                         _sigmoid((bass - 0.5) * 10), _sigmoid((flux - 0.5) * 5)])  # fmt: skip
        return MusicSegments(
            starts=np.array([s.start for s in bounds]),
            ends=np.array([s.end for s in bounds]),
            embeddings=np.asarray(embeddings, dtype=np.float32),
            tag_probabilities={"STATS": np.asarray(tags, dtype=np.float32)},
            tag_names={"STATS": list(TAGS)},
        )


def decode_mono(path: str) -> np.ndarray:
    """Whole file → float32 mono at SAMPLE_RATE through the product's decoder (MediaError if unusable)."""
    from viml.engine.media import read_audio

    audio = read_audio(path, SAMPLE_RATE)
    if len(audio) < MIN_SAMPLES:
        raise MediaError(path, f"too short to analyse ({len(audio) / SAMPLE_RATE:.3f} s of audio)")
    return audio


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def load() -> StatsAnalyzer:
    return StatsAnalyzer()


class GatedAnalyzer(StatsAnalyzer):
    """For the kill -9 test: each analysis first takes a ticket, a file named ticket-* in the folder
    VIML_TEST_SCAN_GATE names. The test hands out tickets, so the scan advances exactly as far as the test
    lets it and a kill lands at a chosen point of progress however fast or slow the machine is."""

    def analyze_file(self, path: str) -> MusicSegments:
        gate = os.environ["VIML_TEST_SCAN_GATE"]
        while True:
            for name in sorted(os.listdir(gate)):
                if name.startswith("ticket-"):
                    try:  # rename is atomic: of several workers, one gets each ticket
                        os.rename(os.path.join(gate, name), os.path.join(gate, "claimed-" + name[7:]))
                    except FileNotFoundError:
                        continue
                    return super().analyze_file(path)
            time.sleep(0.002)


def load_gated() -> GatedAnalyzer:
    return GatedAnalyzer()
