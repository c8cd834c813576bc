"""Opening media files with PyAV, turning every failure into a `MediaError`, and `probe`.

Times everywhere in `engine.media` are seconds from the container's start time (what a player shows
as 0:00), so audio and video of one file stay in sync even when a stream starts late.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from viml.core.errors import MediaError

from .ogg import repaired_ogg

_AV_TIME_BASE = 1_000_000
# A stream that ends this much earlier than its header says is reported as truncated. Ogg and WAV
# derive their duration from what is on disk, so a cut-off copy there reads as a shorter file.
_TRUNCATION_TOLERANCE_SECONDS = 0.25
_TRUNCATION_TOLERANCE_FRACTION = 0.02
# Matroska/WebM keep per-stream durations in a tag like "00:02:03.456000000".
_DURATION_TAG = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float  # seconds
    start_time: float  # container start (seconds); all other times are relative to it
    has_video: bool
    has_audio: bool
    video_codec: str | None = None
    width: int | None = None  # as displayed: after rotation and pixel aspect ratio
    height: int | None = None
    fps: float | None = None  # average frame rate
    rotation: int = 0  # clockwise degrees a player turns the coded picture: 0, 90, 180 or 270
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


@contextlib.contextmanager
def open_media(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """Open `path` for reading, or raise MediaError saying why it cannot be read."""
    file = Path(path)
    if not file.exists():
        raise MediaError(path, "file not found")
    if file.is_dir():
        raise MediaError(path, "is a folder, not a media file")
    try:
        size = file.stat().st_size
    except OSError as error:
        raise MediaError(path, f"cannot read file ({error.strerror or error})") from error
    if size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    if not os.access(file, os.R_OK):
        raise MediaError(path, "permission denied")
    try:
        container, repaired = _av_open(file)
    except PermissionError as error:
        raise MediaError(path, "permission denied") from error
    except av.error.InvalidDataError as error:
        raise MediaError(path, "not a readable media file (unknown format, or corrupt/truncated)") from error
    except av.error.EOFError as error:
        raise MediaError(
            path, "not a readable media file (no audio or video data before its end: not media, or truncated)"
        ) from error
    except (av.FFmpegError, OSError) as error:
        raise MediaError(path, f"cannot open media ({error})") from error
    try:
        _check_streams(container, path)
        yield container
    finally:
        container.close()
        if repaired is not None:
            repaired.close()


def _av_open(file: Path):
    """av.open, or the Ogg repair when FFmpeg rejects the data; returns (container, file object or None)."""
    try:
        return av.open(str(file), metadata_errors="ignore"), None
    except av.error.InvalidDataError:
        # FFmpeg refuses Ogg Vorbis with repeated header packets: read it without the repeats.
        repaired = repaired_ogg(file)
        if repaired is None:
            raise
    try:
        return av.open(repaired, format="ogg", metadata_errors="ignore"), repaired
    except BaseException:
        repaired.close()
        raise


def _check_streams(container, path: str | os.PathLike) -> None:
    """Raise MediaError unless some audio or video stream can be decoded."""
    streams = [*container.streams.audio, *container.streams.video]
    if not streams:
        raise MediaError(path, "no audio or video stream")
    if any(decodable(stream) for stream in streams):
        return
    # Demuxers that match by file name alone (e.g. FLAC, for a text file named .flac) give streams
    # with no codec or no sample rate; say which, rather than fail later in a resampler.
    raise MediaError(path, f"not a readable media file ({undecodable_reason(streams[0])})")


def decodable(stream) -> bool:
    """Whether PyAV has a decoder for `stream` and, for audio, knows its sample rate."""
    context = stream.codec_context
    if context is None:
        return False
    return stream.type != "audio" or context.sample_rate > 0


def undecodable_reason(stream) -> str:
    if stream.codec_context is None:
        return f"its {stream.type} stream uses an unknown or unsupported codec"
    return f"its {stream.codec_context.name} audio stream has no sample rate: not real audio, or a corrupt header"


def first_decodable(container, kind: str, path: str | os.PathLike):
    """The first decodable stream of `kind` ("audio" or "video"), or MediaError saying why none is."""
    streams = list(getattr(container.streams, kind))
    if not streams:
        raise MediaError(path, f"no {kind} stream")
    for stream in streams:
        if decodable(stream):
            return stream
    raise MediaError(path, f"{kind} cannot be decoded: {undecodable_reason(streams[0])}")


def truncation_tolerance(expected_end: float) -> float:
    """How far (seconds) decoding may stop short of `expected_end` before the file counts as truncated."""
    return max(_TRUNCATION_TOLERANCE_SECONDS, _TRUNCATION_TOLERANCE_FRACTION * expected_end)


def origin(container) -> float:
    """The container start time in seconds (0 when unknown)."""
    return container.start_time / _AV_TIME_BASE if container.start_time is not None else 0.0


def stream_duration(container, stream) -> float | None:
    """Duration of one stream in seconds, from the best source the container offers, or None."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    match = _DURATION_TAG.match(stream.metadata.get("DURATION", "").strip())
    if match:
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if len(container.streams) == 1 and container.duration is not None:
        return container.duration / _AV_TIME_BASE
    return None


def container_duration(container, path: str | os.PathLike) -> float:
    """Duration in seconds; when no header says, the end of the last packet (one demux pass, no decode)."""
    if container.duration is not None and container.duration > 0:
        return container.duration / _AV_TIME_BASE
    durations = [d for s in container.streams if (d := stream_duration(container, s)) is not None]
    if durations:
        return max(durations)
    end = 0.0
    with open_media(path) as scan:
        try:
            for packet in scan.demux():
                if packet.pts is not None and packet.time_base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        except av.FFmpegError:
            pass  # a broken tail: what was read so far is the duration we can vouch for
    return max(0.0, end - origin(container))


def clockwise_rotation(frame: av.VideoFrame, stream) -> int:
    """Clockwise degrees (0/90/180/270) to turn a decoded frame for display."""
    counter_clockwise = frame.rotation  # from the display matrix; 0 when there is none
    if not counter_clockwise:
        with contextlib.suppress(ValueError):  # the old `rotate` tag is already clockwise
            return int(round(float(stream.metadata.get("rotate", "0")) / 90)) % 4 * 90
    return int(round(-counter_clockwise / 90)) % 4 * 90


def display_size(width: int, height: int, sample_aspect: object, rotation: int) -> tuple[int, int]:
    """(width, height) as a player shows it: pixel aspect applied, then rotated."""
    with contextlib.suppress(TypeError, ValueError, ZeroDivisionError):
        if sample_aspect and float(sample_aspect) > 0:
            width = int(round(width * float(sample_aspect)))
    return (height, width) if rotation in (90, 270) else (width, height)


def first_video_frame(container, path: str | os.PathLike) -> av.VideoFrame:
    """Decode the first video frame (for rotation and the real picture size)."""
    try:
        for frame in container.decode(video=0):
            return frame
    except av.FFmpegError as error:
        raise MediaError(path, f"video stream cannot be decoded ({error})") from error
    raise MediaError(
        path, "video stream has no decodable frames (empty stream, or a corrupt or truncated file)"
    )


def probe(path: str | os.PathLike) -> MediaInfo:
    """What is in a media file: duration, streams, picture size after rotation, audio format.

    Decodes one video frame (rotation lives in frame side data); audio is not decoded.
    """
    with open_media(path) as container:
        info = {
            "path": str(path),
            "container": container.format.name,
            "duration": container_duration(container, path),
            "start_time": origin(container),
            "has_video": any(decodable(s) for s in container.streams.video),
            "has_audio": any(decodable(s) for s in container.streams.audio),
        }
        if info["has_audio"]:
            audio = first_decodable(container, "audio", path)
            info |= {
                "audio_codec": audio.codec_context.name,
                "sample_rate": audio.codec_context.sample_rate or None,
                "channels": audio.codec_context.channels or None,
            }
        if info["has_video"]:
            video = first_decodable(container, "video", path)
            rate = video.average_rate or video.guessed_rate
            frame = first_video_frame(container, path)
            rotation = clockwise_rotation(frame, video)
            width, height = display_size(frame.width, frame.height, video.sample_aspect_ratio, rotation)
            info |= {
                "video_codec": video.codec_context.name,
                "width": width,
                "height": height,
                "fps": float(rate) if rate else None,
                "rotation": rotation,
            }
        return MediaInfo(**info)


def decode_tolerantly(container, stream, path: str | os.PathLike, kind: str, max_errors: int) -> Iterator:
    """Decoded frames of `stream`; isolated corrupt packets are skipped (as players do), but more than
    `max_errors` unreadable packets in a row, or a demuxer failure, mean the stream is broken."""
    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as error:
                errors += 1
                if errors > max_errors:
                    raise MediaError(path, f"{kind} decode failed ({error})") from error
                continue
            errors = 0
            yield from frames
    except av.FFmpegError as error:  # demuxer failure mid-file
        raise MediaError(path, f"{kind} decode failed ({error})") from error
