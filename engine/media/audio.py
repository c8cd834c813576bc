"""Audio for the music model: PyAV decode → mono (channel mean) → soxr HQ resample, streamed.

Mono by averaging channels, then soxr "HQ": the order and resampler of librosa.load, which the music
tagger's reference used (other resamplers shift tag probabilities). Decoding and resampling run chunk
by chunk: `iter_audio` hands the result on in blocks of about a second, so memory does not grow with a
file's length; `read_audio` joins the blocks. Files outside `limits` are refused with a MediaError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import av
import numpy as np
import soxr
from viml.core.errors import MediaError

from . import limits
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
# `iter_audio` yields blocks of at least this length (except the last).
BLOCK_SECONDS = 1.0


def read_audio(
    path: str | os.PathLike, sample_rate: int, start: float = 0.0, end: float | None = None
) -> np.ndarray:
    """Float32 mono samples in [-1, 1] at `sample_rate` for [start, end) seconds (end None: to the end).

    Raises MediaError for a missing, empty, unreadable, non-media or truncated file, a file without
    audio, a decode failure, a start past the end, or a file outside `engine.media.limits`.
    """
    blocks = _audio_blocks(path, (sample_rate,), start, end)
    expected = next(blocks)
    if expected is None:  # no declared length: join at the end
        return np.concatenate([np.zeros(0, np.float32), *(step[0] for step in blocks)])
    samples = np.empty(expected, np.float32)  # one copy of the audio, filled as it decodes
    filled = 0
    for (block,) in blocks:
        samples[filled : filled + len(block)] = block
        filled += len(block)
    return samples[:filled]


def iter_audio(
    path: str | os.PathLike, sample_rate: int, start: float = 0.0, end: float | None = None
) -> Iterator[np.ndarray]:
    """`read_audio` as consecutive float32 blocks of about BLOCK_SECONDS; memory stays at one block.

    Problems found before decoding (no audio, limits) raise on the first `next`; problems found only
    at the end of the stream (truncation, a stream longer than its header said) after the last block.
    """
    for blocks in iter_audio_rates(path, (sample_rate,), start, end):
        yield blocks[0]


def iter_audio_rates(
    path: str | os.PathLike, sample_rates: tuple[int, ...], start: float = 0.0, end: float | None = None
) -> Iterator[tuple[np.ndarray, ...]]:
    """`iter_audio` at several rates from one decode: per step, one block per rate (the same span of
    audio, about BLOCK_SECONDS). Each rate's blocks joined equal `read_audio` at that rate, sample for
    sample: every rate has its own resampler fed the same mono frames."""
    blocks = _audio_blocks(path, tuple(sample_rates), start, end)
    next(blocks)
    yield from blocks


def _audio_blocks(
    path: str | os.PathLike, sample_rates: tuple[int, ...], start: float, end: float | None
) -> Iterator:
    """First the number of samples the header promises at the first rate (None if it does not say), then
    per step a tuple of blocks, one per rate."""
    if not sample_rates or min(sample_rates) <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rates}")
    if not start >= 0 or (end is not None and not end > start):
        raise ValueError(f"bad time range: start {start}, end {end}")
    with open_media(path) as container:
        stream = first_decodable(container, "audio", path)
        source_rate = _checked_source(stream, path)
        declared = stream_duration(container, stream)
        if declared is not None and start >= declared:
            raise MediaError(path, f"start {start:.2f} s is past the end of the audio ({declared:.2f} s)")
        wanted_end = declared if end is None else (min(end, declared) if declared is not None else None)
        if wanted_end is not None and wanted_end - start > limits.MAX_AUDIO_SECONDS:
            span = wanted_end - start
            raise MediaError(path, f"{span:.0f} s of audio ({span / 3600:.1f} h), more than {_limit()}")
        # Codec padding past the end (e.g. AAC's last partial frame) is dropped.
        keep = [None if wanted_end is None else int(round((wanted_end - start) * r)) for r in sample_rates]
        yield keep[0]
        block = max(1, int(BLOCK_SECONDS * sample_rates[0]))
        pending: list[list[np.ndarray]] = [[] for _ in sample_rates]
        pending_size = [0] * len(sample_rates)
        emitted = [0] * len(sample_rates)
        decoded_end: float | None = None
        args = (container, stream, path, source_rate, sample_rates, start, end)
        for chunks, decoded_to in _decode_range(*args, seek=start > 0):
            decoded_end = decoded_to
            for n, chunk in enumerate(chunks):
                if keep[n] is not None:
                    chunk = chunk[: max(0, keep[n] - emitted[n] - pending_size[n])]
                if len(chunk):
                    pending[n].append(chunk)
                    pending_size[n] += len(chunk)
            if pending_size[0] >= block:
                yield _emit(pending, pending_size, emitted)
        if decoded_end is None:
            raise MediaError(path, "no audio could be decoded (empty stream, or a corrupt or truncated file)")
        if any(pending_size):
            yield _emit(pending, pending_size, emitted)
    if wanted_end is not None and wanted_end - decoded_end > truncation_tolerance(wanted_end):
        raise MediaError(
            path, f"truncated: audio stops at {decoded_end:.2f} s but the file says {wanted_end:.2f} s"
        )


def _emit(pending: list[list[np.ndarray]], sizes: list[int], emitted: list[int]) -> tuple[np.ndarray, ...]:
    """The pending samples of every rate as one block each; the pending lists are emptied."""
    out = []
    for n, chunks in enumerate(pending):
        out.append(_joined(chunks) if chunks else np.zeros(0, np.float32))
        emitted[n] += sizes[n]
        chunks.clear()
        sizes[n] = 0
    return tuple(out)


def _checked_source(stream, path: str | os.PathLike) -> int:
    """The stream's sample rate, or MediaError when the rate or channel count is outside `limits`."""
    rate = stream.codec_context.sample_rate or stream.rate
    if rate < limits.MIN_SAMPLE_RATE:
        raise MediaError(
            path,
            f"sample rate {rate} Hz is below the minimum of {limits.MIN_SAMPLE_RATE} Hz "
            "(not music, or a corrupt header)",
        )
    channels = stream.codec_context.channels
    if channels > limits.MAX_CHANNELS:
        raise MediaError(path, f"{channels} audio channels; at most {limits.MAX_CHANNELS} are supported")
    return rate


def _limit() -> str:
    return f"the limit of {limits.MAX_AUDIO_SECONDS:.0f} s ({limits.MAX_AUDIO_SECONDS / 3600:g} h)"


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    samples = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return np.clip(samples, -1.0, 1.0, out=samples)  # lossy decoders and resampling overshoot slightly


def _decode_range(
    container,
    stream,
    path,
    source_rate: int,
    sample_rates: tuple[int, ...],
    start: float,
    end: float | None,
    seek: bool,
) -> Iterator[tuple[tuple[np.ndarray, ...], float]]:
    """Decode, trim, downmix and resample: per frame, (samples at each rate, end time decoded so far)."""
    zero = origin(container)
    if seek:
        target = max(0.0, start - _SEEK_MARGIN_SECONDS) + zero
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            seek = False  # not seekable: decode from the top and trim
            container.seek(0)
    resamplers = [
        soxr.ResampleStream(source_rate, rate, 1, dtype="float32", quality="HQ")
        if source_rate != rate
        else None
        for rate in sample_rates
    ]
    empty = np.zeros(0, np.float32)
    position: float | None = None  # time (s) of the next sample, relative to the container start
    for frame in _packed_float_frames(container, stream, path, source_rate):
        if frame.time is not None:
            position = float(frame.time) - zero
        elif position is None:
            position = 0.0
        if position > start + 1e-3 and seek:
            # The seek overshot the start (approximate index): decode from the top instead.
            container.seek(0)
            yield from _decode_range(container, stream, path, source_rate, sample_rates, start, end, False)
            return
        seek = False
        # One plane of interleaved samples whatever the channel count: PyAV's planar view of a frame
        # with 8 or more channels reads past FFmpeg's plane pointers and crashes the process.
        channels = frame.layout.nb_channels
        mono = frame.to_ndarray().reshape(-1, channels).mean(axis=1, dtype=np.float32)
        first = max(0, int(round((start - position) * source_rate)))
        last = len(mono) if end is None else min(len(mono), int(round((end - position) * source_rate)))
        position += len(mono) / source_rate
        if position - start > limits.MAX_AUDIO_SECONDS + truncation_tolerance(limits.MAX_AUDIO_SECONDS):
            raise MediaError(path, f"the audio goes on past {_limit()}")
        kept = mono[first:last] if first < last else empty
        yield tuple(r.resample_chunk(kept) if r else kept for r in resamplers), position
        if end is not None and position >= end:
            break
    if position is not None and any(resamplers):
        yield tuple(r.resample_chunk(empty, last=True) if r else empty for r in resamplers), position


def _packed_float_frames(container, stream, path, rate: int) -> Iterator[av.AudioFrame]:
    """Decoded frames as packed float at `rate`; skips isolated corrupt packets, raises when the stream
    is broken. A new converter is set up when the format, layout or rate changes mid-stream."""
    converter, shape = None, None
    try:
        for frame in decode_tolerantly(container, stream, path, "audio", _MAX_CONSECUTIVE_ERRORS):
            if (frame.format.name, frame.layout.name, frame.sample_rate) != shape:
                if converter is not None:
                    yield from converter.resample(None)
                converter = av.AudioResampler(format="flt", rate=rate)
                shape = (frame.format.name, frame.layout.name, frame.sample_rate)
            yield from converter.resample(frame)
        if converter is not None:
            yield from converter.resample(None)  # flush
    except av.FFmpegError as error:
        raise MediaError(path, f"audio decode failed ({error})") from error
