"""Write small, real media files with PyAV at test time (no media is ever committed).

Video frames carry their own index as a flat colour (`frame_pattern` / `read_frame_index`), so a test
can tell exactly which source frame a decoder picked, even through lossy codecs, resizing and
rotation. A white block marks the top-left corner of the *coded* picture, so a test can see where
rotation metadata moved it. Audio is a sine tone (or any signal you pass), so resampling and downmix
can be checked by frequency and level.

Typical use:

    from tests.media_factory import write_video, write_audio
    clip = write_video(tmp_path / "clip.mp4", seconds=3, fps=10, with_audio=True)
    song = write_audio(tmp_path / "song.flac", seconds=2, sample_rate=44100, channels=2)

The container comes from the file suffix; the codec defaults to the one in VIDEO_CODECS / AUDIO_CODECS.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Suffix -> default video codec. Every one of these encodes with the PyAV wheel's bundled FFmpeg.
VIDEO_CODECS = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx-vp9",
    ".avi": "mpeg4",
}
# Suffix -> audio codec used for the audio track of a video in that container.
VIDEO_AUDIO_CODECS = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus", ".avi": "pcm_s16le"}
# Suffix -> default codec of an audio-only file.
AUDIO_CODECS = {
    ".wav": "pcm_s16le",
    ".flac": "flac",
    ".mp3": "libmp3lame",
    ".ogg": "vorbis",
    ".opus": "libopus",
    ".m4a": "aac",
}
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}
# Codecs that only accept some sample rates: the nearest supported rate is used instead.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

# Frame index code: three base-8 digits as flat R, G, B levels 32 apart, robust to lossy coding.
_LEVELS = 8
_STEP = 256 // _LEVELS
MAX_FRAME_INDEX = _LEVELS**3 - 1
# The white marker covers this fraction of each side of the coded picture, at its top-left corner.
MARKER_FRACTION = 0.25
# Frame durations (seconds) cycled through by a variable-frame-rate clip.
VFR_DURATIONS = (0.05, 0.15, 0.1, 0.2)


def can_encode(codec: str) -> bool:
    """Whether this PyAV build can encode `codec` (use with pytest.skip for optional codecs)."""
    try:
        av.Codec(codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def frame_pattern(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 [height, width, 3]: flat colour encoding `index`, white block at the top-left."""
    if not 0 <= index <= MAX_FRAME_INDEX:
        raise ValueError(f"frame index {index} outside 0..{MAX_FRAME_INDEX}")
    digits = [(index // _LEVELS**k) % _LEVELS for k in range(3)]
    image = np.empty((height, width, 3), np.uint8)
    image[:] = [d * _STEP + _STEP // 2 for d in digits]
    image[: max(1, int(height * MARKER_FRACTION)), : max(1, int(width * MARKER_FRACTION))] = 255
    return image


def read_frame_index(image: np.ndarray) -> int:
    """Inverse of `frame_pattern` for a decoded (possibly resized, rotated, lossy) RGB frame."""
    # The median ignores the marker block and ringing at its edges.
    levels = np.median(image.reshape(-1, 3).astype(np.float64), axis=0)
    digits = np.clip(np.floor(levels / _STEP), 0, _LEVELS - 1).astype(int)
    return int(sum(int(d) * _LEVELS**k for k, d in enumerate(digits)))


def marker_corner(image: np.ndarray) -> str:
    """Which corner of a decoded frame holds the white marker: 'top-left', 'top-right', ..."""
    height, width = image.shape[:2]
    h, w = max(1, int(height * MARKER_FRACTION / 2)), max(1, int(width * MARKER_FRACTION / 2))
    corners = {
        "top-left": image[:h, :w],
        "top-right": image[:h, -w:],
        "bottom-left": image[-h:, :w],
        "bottom-right": image[-h:, -w:],
    }
    return max(corners, key=lambda name: float(corners[name].mean()))


def vfr_frame_times(seconds: float) -> list[float]:
    """Start times of the frames of a variable-frame-rate clip of `seconds` (cycling VFR_DURATIONS)."""
    times, position, k = [], 0.0, 0
    while position < seconds - 1e-9:
        times.append(round(position, 3))
        position += VFR_DURATIONS[k % len(VFR_DURATIONS)]
        k += 1
    return times


def tone(
    seconds: float, sample_rate: int, channels: int = 1, frequency: float = 440.0, amplitude: float = 0.5
):
    """Float32 [channels, samples] sine; every channel carries the same tone."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    wave = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return np.repeat(wave[None, :], channels, axis=0)


def write_video(
    path: str | os.PathLike,
    seconds: float = 2.0,
    fps: float = 10.0,
    size: tuple[int, int] = (64, 48),
    codec: str | None = None,
    with_audio: bool = False,
    rotation: int = 0,
    vfr: bool = False,
    audio_sample_rate: int = 16000,
    audio_codec: str | None = None,
) -> Path:
    """Write a video whose frame i shows `frame_pattern(i)`; returns the path.

    size: coded (width, height). rotation: clockwise degrees a player turns the picture for display
    (the old `rotate` tag convention; stored as a display matrix). vfr: frame times follow
    `vfr_frame_times` instead of a constant `fps`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or VIDEO_CODECS[suffix]
    width, height = size
    if vfr and suffix == ".avi":
        raise ValueError("AVI stores a constant frame rate only")
    times = vfr_frame_times(seconds) if vfr else [i / fps for i in range(max(1, int(round(seconds * fps))))]
    # Millisecond timestamps express both constant and variable rates exactly; AVI counts frames.
    time_base = Fraction(1, 1000) if suffix != ".avi" else 1 / Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if suffix != ".avi":  # AVI keeps the time base `rate` gives it (setting it shifts frame 1).
            stream.codec_context.time_base = stream.time_base = time_base
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees.
        audio = None
        if with_audio:
            audio = _add_audio_stream(
                container, audio_codec or VIDEO_AUDIO_CODECS[suffix], audio_sample_rate, 1
            )
        # Interleave audio with video by time: AVI's demuxer misreads timestamps of non-interleaved files.
        audio_frames = []
        if audio is not None:
            audio_frames = _audio_frames(audio, tone(seconds, audio.codec_context.sample_rate)) + [None]
        for index, start in enumerate(times):
            while audio_frames and (audio_frames[0] is None or audio_frames[0].time <= start):
                container.mux(audio.encode(audio_frames.pop(0)))
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, width, height), format="rgb24")
            frame.pts, frame.time_base = int(round(start / time_base)), time_base
            container.mux(stream.encode(frame))
        for audio_frame in audio_frames:
            container.mux(audio.encode(audio_frame))
        container.mux(stream.encode(None))
    return path


def write_audio(
    path: str | os.PathLike,
    seconds: float = 2.0,
    sample_rate: int = 16000,
    channels: int = 1,
    codec: str | None = None,
    frequency: float = 440.0,
    signal: np.ndarray | None = None,
) -> Path:
    """Write an audio-only file of a sine tone, or of `signal` (float32 [channels, samples] in [-1, 1]).

    Opus only takes 8/12/16/24/48 kHz: the nearest of those is used (the signal is written as is).
    FFmpeg's Vorbis encoder writes stereo only, and MP3 at most two channels.
    """
    path = Path(path)
    codec = codec or AUDIO_CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as container:
        if signal is not None:
            channels = signal.shape[0]
        stream = _add_audio_stream(container, codec, sample_rate, channels)
        rate = stream.codec_context.sample_rate
        if signal is None:
            signal = tone(seconds, rate, channels, frequency)
        _encode_audio(container, stream, np.asarray(signal, np.float32))
    return path


def write_zero_bytes(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_random_bytes(path: str | os.PathLike, size: int = 4096, seed: int = 0) -> Path:
    """Noise under a media name (e.g. `junk.mp4`): no demuxer should accept it."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_truncated(source: str | os.PathLike, path: str | os.PathLike, keep: float = 0.5) -> Path:
    """Copy the first `keep` fraction of `source`'s bytes to `path` (an interrupted download)."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _add_audio_stream(container, codec: str, sample_rate: int, channels: int):
    if codec in ("libopus", "opus"):
        sample_rate = min(_OPUS_RATES, key=lambda r: abs(r - sample_rate))
    stream = container.add_stream(codec, rate=sample_rate)
    stream.codec_context.layout = _LAYOUTS[channels]
    if codec == "vorbis":  # FFmpeg's own Vorbis encoder is marked experimental.
        stream.codec_context.options = {"strict": "experimental"}
    return stream


def _encode_audio(container, stream, signal: np.ndarray) -> None:
    for frame in _audio_frames(stream, signal):
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _audio_frames(stream, signal: np.ndarray) -> list[av.AudioFrame]:
    """`signal` as frames in the encoder's sample format, layout and frame size."""
    context = stream.codec_context
    layout = context.layout.name
    # Encoders such as AAC, MP3 and Opus take frames of exactly `frame_size` samples.
    resampler = av.AudioResampler(
        format=context.format.name,
        layout=layout,
        rate=context.sample_rate,
        frame_size=context.frame_size or None,
    )
    frames: list[av.AudioFrame] = []
    chunk = 1024
    for offset in range(0, signal.shape[1], chunk):
        block = np.ascontiguousarray(signal[:, offset : offset + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        frame.sample_rate = context.sample_rate
        frame.pts, frame.time_base = offset, Fraction(1, context.sample_rate)
        frames += resampler.resample(frame)
    return frames + resampler.resample(None)


def write_ogg_repeated_headers(
    source: str | os.PathLike, path: str | os.PathLike, own_page: bool = False, change_setup: bool = False
) -> Path:
    """Copy the Ogg Vorbis file `source` to `path` with its three header packets repeated right after
    the first set, in the same logical stream, on a page without the beginning-of-stream flag: the
    structure of Debian hyperrogue-music's `hr-savino-*.ogg` (a tag editor's leftovers), which FFmpeg's
    Ogg demuxer refuses. The repeated comment is shorter, as there. own_page: the repeats get a page
    of their own instead of opening the first audio page. change_setup: the repeated setup header
    differs by one byte."""
    pages = _ogg_pages(Path(source).read_bytes())
    packets, position = [], 0  # the three header packets, from the first pages
    data = b"".join(body for _, _, lacing, body in pages[:2])
    lacing_values = [value for _, _, lacing, _ in pages[:2] for value in lacing]
    current = b""
    for value in lacing_values:
        current += data[position : position + value]
        position += value
        if value < 255:
            packets.append(current)
            current = b""
    identification, comment, setup = packets[:3]
    if not (identification.startswith(b"\x01vorbis") and setup.startswith(b"\x05vorbis")):
        raise ValueError(f"{source}: the first two pages do not hold the three Vorbis headers")
    vendor_length = int.from_bytes(comment[7:11], "little")
    short_comment = comment[: 11 + vendor_length] + (1).to_bytes(4, "little") + _tag(b"ENCODER=x") + b"\x01"
    if change_setup:
        setup = setup[:-2] + bytes([setup[-2] ^ 0x40]) + setup[-1:]
    repeats = [identification, short_comment, setup]
    repeat_lacing = [value for packet in repeats for value in _lacing(len(packet))]
    flags, granule, lacing, body = pages[2]
    if own_page or len(lacing) + len(repeat_lacing) > 255:
        pages.insert(2, (0, 0, repeat_lacing, b"".join(repeats)))
    else:
        pages[2] = (flags, granule, repeat_lacing + lacing, b"".join(repeats) + body)
    serial = int.from_bytes(Path(source).read_bytes()[14:18], "little")
    path = Path(path)
    path.write_bytes(b"".join(_ogg_page(serial, seq, *page) for seq, page in enumerate(pages)))
    return path


def _tag(text: bytes) -> bytes:
    return len(text).to_bytes(4, "little") + text


def _lacing(length: int) -> list[int]:
    return [255] * (length // 255) + [length % 255]


def _ogg_pages(data: bytes) -> list[tuple[int, int, list[int], bytes]]:
    """(flags, granule, lacing values, body) of each page of a single-stream Ogg file."""
    pages, offset = [], 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS":
            raise ValueError(f"no Ogg page at byte {offset}")
        flags = data[offset + 5]
        granule = int.from_bytes(data[offset + 6 : offset + 14], "little", signed=True)
        count = data[offset + 26]
        lacing = list(data[offset + 27 : offset + 27 + count])
        start = offset + 27 + count
        pages.append((flags, granule, lacing, data[start : start + sum(lacing)]))
        offset = start + sum(lacing)
    return pages


def _ogg_page(serial: int, sequence: int, flags: int, granule: int, lacing: list[int], body: bytes) -> bytes:
    page = bytearray(b"OggS\x00" + bytes([flags]))
    page += granule.to_bytes(8, "little", signed=True) + serial.to_bytes(4, "little")
    page += sequence.to_bytes(4, "little") + bytes(4) + bytes([len(lacing)]) + bytes(lacing) + body
    crc = 0  # CRC-32, polynomial 0x04C11DB7, MSB first, as the Ogg spec defines it
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    page[22:26] = crc.to_bytes(4, "little")
    return bytes(page)
