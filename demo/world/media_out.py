"""Write the world's media with PyAV: audio in several real formats (+ mutagen tags), H.264 videos.

Formats rotate across pieces so that readers are exercised on everything a music folder holds:
WAV (PCM), FLAC, MP3 (LAME), Ogg Opus and M4A (AAC). Encoders run single-threaded: the world
generator parallelises over pieces, and one thread per file also keeps the output reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

# extension -> (PyAV container format, codec, bit rate or None for lossless)
AUDIO_FORMATS: dict[str, tuple[str, str, int | None]] = {
    "wav": ("wav", "pcm_s16le", None),
    "flac": ("flac", "flac", None),
    "mp3": ("mp3", "libmp3lame", 128_000),
    "ogg": ("ogg", "libopus", 96_000),
    "m4a": ("ipod", "aac", 128_000),
}
# Faster encoder settings at the same bit rate (measured: MP3 0.54 -> 0.29 s, AAC 0.47 -> 0.13 s per 30 s).
ENCODER_OPTIONS = {"libmp3lame": {"compression_level": "7"}, "aac": {"aac_coder": "fast"}}


def _audio_frame(audio: np.ndarray, sample_rate: int) -> av.AudioFrame:
    """Packed stereo float32 frame; the encoder's own resampler converts format and chunk size."""
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1), "flt", "stereo"
    )
    frame.sample_rate = sample_rate
    frame.pts = 0
    return frame


def _add_audio_stream(container, codec: str, sample_rate: int, bit_rate: int | None):
    stream = container.add_stream(codec, rate=sample_rate, layout="stereo")
    if bit_rate:
        stream.bit_rate = bit_rate
    stream.options = dict(ENCODER_OPTIONS.get(codec, {}))
    stream.codec_context.thread_count = 1
    return stream


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Encode stereo float32 [samples, 2] into `path`; the format follows the file extension."""
    extension = path.suffix.lstrip(".").lower()
    if extension not in AUDIO_FORMATS:
        raise ValueError(f"unsupported audio extension {extension!r}; use one of {', '.join(AUDIO_FORMATS)}")
    container_format, codec, bit_rate = AUDIO_FORMATS[extension]
    with av.open(str(path), "w", format=container_format) as container:
        stream = _add_audio_stream(container, codec, sample_rate, bit_rate)
        for packet in stream.encode(_audio_frame(audio, sample_rate)):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 0,
) -> None:
    """Encode RGB uint8 frames [H, W, 3] as H.264 MP4, with the music as an AAC track if given."""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.thread_count = 1
        # ultrafast: a third of veryfast's CPU time (0.06 vs 0.19 s per 30 s) for ~2x the (tiny) size.
        video.options = {"crf": "26", "preset": "ultrafast", "g": str(2 * fps)}
        sound = _add_audio_stream(container, "aac", sample_rate, 128_000) if audio is not None else None
        _encode_image(container, video, first, 0)
        for index, pixels in enumerate(frames, start=1):
            _encode_image(container, video, pixels, index)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            for packet in sound.encode(_audio_frame(audio, sample_rate)):
                container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)


def _encode_image(container, stream, pixels: np.ndarray, index: int) -> None:
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    frame.pts = index
    for packet in stream.encode(frame):
        container.mux(packet)


def write_tags(path: Path, title: str, artist: str, genre: str, bpm: float) -> None:
    """Title / artist / genre / BPM in each format's native tag scheme (Picard conventions)."""
    extension = path.suffix.lstrip(".").lower()
    bpm_text = str(int(round(bpm)))
    if extension in ("mp3", "wav"):
        from mutagen.id3 import TBPM, TCON, TIT2, TPE1

        if extension == "mp3":
            from mutagen.mp3 import MP3 as Tagged
        else:
            from mutagen.wave import WAVE as Tagged
        audio = Tagged(str(path))
        if audio.tags is None:
            audio.add_tags()
        for frame in (TIT2(encoding=3, text=title), TPE1(encoding=3, text=artist)):
            audio.tags.add(frame)
        audio.tags.add(TCON(encoding=3, text=genre))
        audio.tags.add(TBPM(encoding=3, text=bpm_text))
        audio.save()
    elif extension in ("flac", "ogg"):
        from mutagen.flac import FLAC
        from mutagen.oggopus import OggOpus

        audio = FLAC(str(path)) if extension == "flac" else OggOpus(str(path))
        audio["TITLE"], audio["ARTIST"], audio["GENRE"], audio["BPM"] = title, artist, genre, bpm_text
        audio.save()
    elif extension == "m4a":
        from mutagen.mp4 import MP4

        audio = MP4(str(path))
        audio["\xa9nam"], audio["\xa9ART"], audio["\xa9gen"] = title, artist, genre
        audio["tmpo"] = [int(round(bpm))]
        audio.save()
    else:
        raise ValueError(f"cannot tag {path}: unsupported extension")
