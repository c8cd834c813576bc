"""Hostile audio, generated at test time: many channels, odd layouts, absurd rates and lengths.

`write_hostile_corpus(folder)` writes the whole set and says what each file should give; the writers
below make single files. A decoder bug on such files can kill the process (PyAV segfaulted on 8+
channels), so tests decode them in a child process (`decode_isolated`), where a crash or a runaway is
a failed test, not a dead pytest. Run as a script, this module is that child:

    python tests/hostile_media.py decode FILE RATE       JSON: samples, mean, rms, or the error
    python tests/hostile_media.py analyze FILE [SEGMENT]  JSON: segments and peak RSS growth (MB) of
                                                          MusicModel.analyze_file with fake taggers
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# WAVE_FORMAT_EXTENSIBLE sub-format GUID tails: PCM and IEEE float.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_PCM, _FLOAT = 1, 3
# What a child may use before it counts as a runaway (the bugs here took minutes and gigabytes).
CHILD_TIMEOUT_SECONDS = 120
CHILD_MEMORY_BYTES = 3 * 1024**3


def channel_signal(channels: int, samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Float32 [channels, samples]: a different tone and level on every channel, plus a little noise."""
    t = np.arange(samples) / sample_rate
    rng = np.random.default_rng(seed)
    tones = [0.4 / (1 + c % 5) * np.sin(2 * np.pi * (110 + 37 * c) * t) for c in range(channels)]
    return (np.stack(tones) + rng.uniform(-0.02, 0.02, (channels, samples))).astype(np.float32)


def write_wav(
    path: str | os.PathLike,
    signal: np.ndarray,
    sample_rate: int,
    channel_mask: int | None = None,
    sample_format: str = "s16",
) -> Path:
    """A WAV written byte by byte (any channel count, any rate, any mask): `signal` float [channels, n].

    channel_mask: write WAVE_FORMAT_EXTENSIBLE with this speaker mask (it may disagree with the
    channel count). sample_format: "s16" or "f32" (f32 keeps NaN and values past full scale).
    """
    channels = signal.shape[0]
    if sample_format == "s16":
        data = (np.clip(signal, -1, 1) * 32767).round().astype("<i2").T.tobytes()
        tag, width = _PCM, 2
    else:
        data = np.asarray(signal, "<f4").T.tobytes()
        tag, width = _FLOAT, 4
    block = channels * width
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, 8 * width)
    if channel_mask is not None:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, sample_rate, sample_rate * block, block, 8 * width)
        fmt += struct.pack("<HHIH", 22, 8 * width, channel_mask, tag) + _GUID_TAIL
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data))
    path = Path(path)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data)
    return path


def write_long_wav(
    path: str | os.PathLike, seconds: float, sample_rate: int = 16000, amplitude: float = 0.01
) -> Path:
    """A long mono 16-bit WAV of low-amplitude noise, written a minute at a time (no big array)."""
    total = int(round(seconds * sample_rate))
    path = Path(path)
    with open(path, "wb") as out:
        fmt = struct.pack("<HHIIHH", _PCM, 1, sample_rate, 2 * sample_rate, 2, 16)
        out.write(b"RIFF" + struct.pack("<I", 36 + 2 * total) + b"WAVEfmt " + struct.pack("<I", 16) + fmt)
        out.write(b"data" + struct.pack("<I", 2 * total))
        rng = np.random.default_rng(0)
        for start in range(0, total, 60 * sample_rate):
            count = min(60 * sample_rate, total - start)
            out.write((rng.standard_normal(count) * amplitude * 32767).astype("<i2").tobytes())
    return path


def write_encoded(
    path: str | os.PathLike, signal: np.ndarray, sample_rate: int, codec: str, layout: str
) -> Path:
    """Encode `signal` (float [channels, n]) with PyAV from packed frames: PyAV's planar frames with
    8+ channels crash, so this is how a 7.1 FLAC or AAC file is written safely."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.codec_context.layout = layout
        context = stream.codec_context
        convert = av.AudioResampler(context.format.name, layout, sample_rate, context.frame_size or None)
        packed = (np.clip(signal, -1, 1) * 32767).round().astype(np.int16)
        for offset in range(0, packed.shape[1], 1024):
            block = np.ascontiguousarray(packed[:, offset : offset + 1024].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, offset, Fraction(1, sample_rate)
            for converted in convert.resample(frame):
                container.mux(stream.encode(converted))
        for converted in convert.resample(None):
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return path


def write_flac_declaring(source: str | os.PathLike, path: str | os.PathLike, total_samples: int) -> Path:
    """Copy a FLAC file with its STREAMINFO's total sample count replaced (a header lying about length)."""
    data = bytearray(Path(source).read_bytes())
    if data[:4] != b"fLaC" or data[4] & 0x7F != 0:
        raise ValueError(f"{source}: no STREAMINFO first")
    info = 8  # "fLaC" + block header; total samples are the low 36 bits of bytes info+13..info+17
    packed = int.from_bytes(data[info + 13 : info + 18], "big")
    packed = (packed & ~((1 << 36) - 1)) | total_samples
    data[info + 13 : info + 18] = packed.to_bytes(5, "big")
    path = Path(path)
    path.write_bytes(bytes(data))
    return path


@dataclass(frozen=True)
class Hostile:
    path: Path
    channels: int  # channels in the file
    error: str | None  # None: decodes to the channel mean; else a substring of the MediaError reason


def write_hostile_corpus(folder: str | os.PathLike) -> list[Hostile]:
    """Every hostile file these tests know, written into `folder`, with what decoding it must give."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rate = 16000
    corpus = []
    for channels in (1, 2, 3, 6, 7, 8, 9, 12, 16, 24, 32, 64):
        path = write_wav(folder / f"pcm-{channels}ch.wav", channel_signal(channels, rate, rate), rate)
        corpus.append(Hostile(path, channels, None))
    corpus.append(Hostile(write_wav(folder / "pcm-65ch.wav", channel_signal(65, 800, rate), rate), 65, "65"))
    # Speaker masks that name fewer, more, or other speakers than there are channels.
    for channels, mask in ((8, 0x3), (16, 0x3FFFF), (4, 0xFF), (6, 0x0), (12, 0x80000000 | 0x3F)):
        path = write_wav(
            folder / f"mask-{channels}ch-{mask:x}.wav", channel_signal(channels, rate, rate), rate, mask
        )
        corpus.append(Hostile(path, channels, None))
    path = write_wav(folder / "float-16ch.wav", channel_signal(16, rate, rate), rate, sample_format="f32")
    corpus.append(Hostile(path, 16, None))
    path = write_encoded(
        folder / "surround-7.1.flac", channel_signal(8, 2 * 48000, 48000), 48000, "flac", "7.1"
    )
    corpus.append(Hostile(path, 8, None))
    path = write_encoded(
        folder / "surround-7.1.m4a", channel_signal(8, 2 * 48000, 48000), 48000, "aac", "7.1"
    )
    corpus.append(Hostile(path, 8, None))
    # A 20 KB WAV that declares 1 Hz: 10,000 s of "audio".
    path = write_wav(folder / "rate-1hz.wav", channel_signal(1, 10000, 1), 1)
    corpus.append(Hostile(path, 1, "sample rate 1 Hz"))
    path = write_wav(folder / "rate-3999hz.wav", channel_signal(1, 3999, 3999), 3999)
    corpus.append(Hostile(path, 1, "below the minimum"))
    short = write_encoded(folder / "short.flac", channel_signal(2, rate, rate), rate, "flac", "stereo")
    path = write_flac_declaring(short, folder / "declares-10h.flac", 10 * 3600 * rate)
    corpus.append(Hostile(path, 2, "more than the limit"))
    return corpus


def decode_isolated(path: str | os.PathLike, sample_rate: int = 16000) -> dict:
    """`read_audio` in a child process; {"crash": ...} when the child dies, runs away or misbehaves."""
    return _child(["decode", str(path), str(sample_rate)])


def analyze_isolated(path: str | os.PathLike, segment_seconds: float = 10.0) -> dict:
    """`MusicModel.analyze_file` (fake taggers) in a child; reports segments and peak RSS growth."""
    return _child(["analyze", str(path), str(segment_seconds)])


def _child(arguments: list[str]) -> dict:
    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))

    try:
        done = subprocess.run(
            [sys.executable, __file__, *arguments],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            preexec_fn=limit_memory,
        )
    except subprocess.TimeoutExpired:
        return {"crash": f"still running after {CHILD_TIMEOUT_SECONDS} s"}
    if done.returncode != 0:
        return {"crash": f"exit status {done.returncode}: {done.stderr.strip()[-600:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Output:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeTaggers:
    """Stands in for the fused musicnn session: outputs are exact functions of every patch's rows, so
    a changed spectrogram shows, at no model cost."""

    vocabularies = ("MTT", "MSD")

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def get_outputs(self) -> list[_Output]:
        return [
            _Output(f"{v}_{kind}") for v in self.vocabularies for kind in ("probabilities", "penultimate")
        ]

    def run(self, _names, feeds: dict) -> list[np.ndarray]:
        patches = feeds["patches"]
        self.batch_sizes.append(len(patches))
        flat = patches.reshape(len(patches), -1)
        probabilities = flat[:, :: flat.shape[1] // 50][:, :50]
        penultimate = np.concatenate([patches.mean(1), patches.max(1), patches.min(1)[:, :8]], axis=1)
        return [probabilities, penultimate, probabilities[:, ::-1].copy(), penultimate[:, ::-1].copy()]


def fake_music_model():
    """A `MusicModel` with the real front end and FakeTaggers instead of the converted musicnn graphs."""
    from viml.engine.music.runtime import MusicModel, _Tagger

    taggers = [
        _Tagger(f"{v}_musicnn", v, [f"{v.lower()}-{i}" for i in range(50)], None)
        for v in FakeTaggers.vocabularies
    ]
    return MusicModel(taggers, {}, fused_session=FakeTaggers())


def _main(command: str, path: str, value: str) -> dict:
    import resource

    from viml.core.errors import MediaError

    if command == "decode":
        from viml.engine.media import read_audio

        try:
            samples = read_audio(path, int(value))
        except MediaError as error:
            return {"error": error.reason}
        return {"samples": samples.tolist()}
    model = fake_music_model()
    model.analyze(np.zeros(16000 * 30, np.float32))  # warm up: imports, FFT plans, allocator pools
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        music = model.analyze_file(path, float(value))
    except MediaError as error:
        return {"error": error.reason}
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "segments": len(music.starts),
        "end": float(music.ends[-1]),
        "rss_growth_mb": (after - before) / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(_main(*sys.argv[1:4])))
