"""Audio for the music model: PyAV decode → mono (channel mean) → soxr HQ resample, streamed.

Mono by averaging channels, then soxr "HQ": the order and resampler of librosa.load, which the music
tagger's reference used (other resamplers shift tag probabilities). Decoding and resampling run chunk
by chunk, so a long file is never held whole at its source rate.
"""

from __future__ import annotations

import os

import av
import numpy as np
import soxr

from viml.errors import MediaError

from .container import (
    decode_tolerantly,
    first_decodable,
    open_media,
    origin,
    stream_duration,
    truncation_tolerance,
)

# Isolated corrupt packets are skipped (as players do); this many in a row means the stream is broken.
_MAX_CONSECUTIVE_ERRORS = 20
# Seek this far before the wanted start: some demuxers (MP3 without an index) seek approximately.
_SEEK_MARGIN_SECONDS = 1.0


def read_audio(
    path: str | os.PathLike, sample_rate: int, start: float = 0.0, end: float | None = None
) -> np.ndarray:
    """Float32 mono samples in [-1, 1] at `sample_rate` for [start, end) seconds (end None: to the end).

    Raises MediaError for a missing, empty, unreadable, non-media or truncated file, a file without
    audio, a decode failure, or a start past the end.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"bad time range: start {start}, end {end}")
    with open_media(path) as container:
        stream = first_decodable(container, "audio", path)
        declared = stream_duration(container, stream)
        if declared is not None and start >= declared:
            raise MediaError(path, f"start {start:.2f} s is past the end of the audio ({declared:.2f} s)")
        chunks, decoded_end = _decode_range(container, stream, path, sample_rate, start, end, seek=start > 0)
    if decoded_end is None:
        raise MediaError(path, "no audio could be decoded (empty stream, or a corrupt or truncated file)")
    wanted_end = declared if end is None else (min(end, declared) if declared is not None else None)
    if wanted_end is not None:
        missing = wanted_end - decoded_end
        if missing > truncation_tolerance(wanted_end):
            raise MediaError(
                path, f"truncated: audio stops at {decoded_end:.2f} s but the file says {wanted_end:.2f} s"
            )
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if wanted_end is not None:  # drop codec padding past the end (e.g. AAC's last partial frame)
        samples = samples[: int(round((wanted_end - start) * sample_rate))]
    np.clip(samples, -1.0, 1.0, out=samples)  # lossy decoders and resampling overshoot slightly
    return samples


def _decode_range(container, stream, path, sample_rate, start, end, seek):
    """Decode, trim, downmix and resample; returns (output chunks, end time of the last decoded sample)."""
    zero = origin(container)
    if seek:
        target = max(0.0, start - _SEEK_MARGIN_SECONDS) + zero
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            seek = False  # not seekable: decode from the top and trim
            container.seek(0)
    # Everything to float planar at the stream's rate (also absorbs mid-stream format changes).
    source_rate = stream.codec_context.sample_rate or stream.rate
    to_float = av.AudioResampler(format="fltp", rate=source_rate)
    resampler = (
        soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
        if source_rate != sample_rate
        else None
    )
    chunks: list[np.ndarray] = []
    position: float | None = None  # time (s) of the next sample, relative to the container start
    decoded_end: float | None = None
    for frame in _frames(container, stream, path, to_float):
        if frame.time is not None:
            position = float(frame.time) - zero
        elif position is None:
            position = 0.0
        if position > start + 1e-3 and decoded_end is None and seek:
            # The seek overshot the start (approximate index): decode from the top instead.
            container.seek(0)
            return _decode_range(container, stream, path, sample_rate, start, end, seek=False)
        mono = frame.to_ndarray().mean(axis=0, dtype=np.float32)
        first = max(0, int(round((start - position) * source_rate)))
        last = len(mono) if end is None else min(len(mono), int(round((end - position) * source_rate)))
        position += len(mono) / source_rate
        decoded_end = position
        if first < last:
            kept = mono[first:last]
            chunks.append(resampler.resample_chunk(kept) if resampler else kept)
        if end is not None and position >= end:
            break
    if resampler is not None:
        chunks.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return [c for c in chunks if len(c)], decoded_end


def _frames(container, stream, path, to_float):
    """Decoded frames in float planar; skips isolated corrupt packets, raises when the stream is broken."""
    try:
        for frame in decode_tolerantly(container, stream, path, "audio", _MAX_CONSECUTIVE_ERRORS):
            yield from to_float.resample(frame)
        yield from to_float.resample(None)  # flush the resampler
    except av.FFmpegError as error:
        raise MediaError(path, f"audio decode failed ({error})") from error
