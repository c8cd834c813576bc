"""The product's music model at run time: converted musicnn taggers on onnxruntime (no torch, no TF).

`MusicModel.load()` opens `MTT_musicnn.onnx` and `MSD_musicnn.onnx` from the converted model folder.
`analyze(audio)` cuts the audio into the shared 10 s segments (`engine.segments`), runs 3 s log-mel
patches spread over each segment through both taggers, and returns per segment:
- tag probabilities for both vocabularies (MTT: instruments/moods, MSD: genres/eras), the mean of the
  segment's patch taggram, as musicnn itself summarises a clip;
- the embedding: the mean of the 200-d "penultimate" layer of MTT then MSD (400-d). That layer is the
  last shared representation before the tag classifier, so it carries everything the tags are read from
  (instrument, genre, mood, tempo feel) in a compact, batch-normalised form, while the 1506-d pooled
  features below it are 4x larger and tied to low-level activations.
By default both taggers run as one graph (`musicnn_fused.onnx`, written by the conversion): it shares
the front-end convolutions and pools before ReLU/batch-norm, same outputs to float rounding (~1e-6),
~1.2x faster than two sessions (bench/music_model.py). `fused=False` runs the two per-model graphs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from viml.core.errors import MediaError, UserFacingError
from viml.engine.music.descriptors import DESCRIPTORS, segment_descriptors
from viml.engine.music.frontend import (
    FRONT_END,
    FrontEndConfig,
    log_mel_spectrogram,
    patch_starts,
    repeat_pad,
)
from viml.engine.music.manifest import (
    CONVERT_COMMAND,
    MANIFEST_NAME,
    MODEL_NAMES,
    model_folder,
    verified_file,
)
from viml.engine.music.types import MusicSegments
from viml.engine.segments import DEFAULT_MIN_FRACTION, DEFAULT_SEGMENT_SECONDS, segment_bounds

log = logging.getLogger(__name__)

# Patches per onnxruntime call: large enough to amortise call overhead, small enough to bound memory
# (~14 MB of activations per patch). Measured flat from 4 to 32 (bench/music_model.py).
BATCH_PATCHES = 16
# Peak amplitude under which a signal counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


class SilentAudioError(MediaError):
    """The audio is silent: every tag would describe silence, and nothing can be found by it."""


class ModelsMissingError(UserFacingError):
    """The converted musicnn ONNX models are not there yet."""


@dataclass(frozen=True)
class _Tagger:
    name: str
    vocabulary: str
    tags: list[str]
    session: object  # onnxruntime.InferenceSession


class MusicModel:
    """Both musicnn taggers plus the front end; call `analyze` or `analyze_file`."""

    def __init__(
        self,
        taggers: list[_Tagger],
        manifest: dict,
        front_end: FrontEndConfig = FRONT_END,
        fused_session: object | None = None,
    ) -> None:
        self.taggers = taggers
        self.manifest = manifest
        self.front_end = front_end
        # One session running every tagger (outputs "<vocabulary>_probabilities", "..._penultimate");
        # when None, each tagger's own session runs.
        self.fused_session = fused_session

    @classmethod
    def load(
        cls,
        folder: Path | None = None,
        device: str = "auto",
        threads: int | None = None,
        fused: bool = True,
    ) -> MusicModel:
        """Open the converted models; `device` is "auto" (CUDA when it really works), "cuda" or "cpu".

        `threads`: onnxruntime intra-op threads (None: one per physical core; give 1 per worker process
        when several processes share the cores). `fused`: run both taggers as one graph (default) or as
        two sessions (the pre-fusion path, kept for comparison and for folders converted before it).
        """
        folder = Path(folder) if folder else model_folder()
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.exists():
            raise ModelsMissingError(
                f"the music model is not converted yet ({manifest_path} is missing); run `{CONVERT_COMMAND}`"
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ModelsMissingError(
                f"{manifest_path} is unreadable ({error}); run `{CONVERT_COMMAND} --force`"
            ) from error
        models = manifest.get("models") if isinstance(manifest, dict) else None
        if not isinstance(models, dict) or not isinstance(manifest.get("front_end"), dict):
            raise ModelsMissingError(f"{manifest_path} is malformed; run `{CONVERT_COMMAND} --force`")
        try:
            same_front_end = FrontEndConfig(**manifest["front_end"]) == FRONT_END
        except TypeError:
            same_front_end = False
        if not same_front_end:
            raise ModelsMissingError(
                f"{folder} was converted for another front end; run `{CONVERT_COMMAND} --force`"
            )

        def checked(name: str, entry: object) -> Path:
            # Every file opened is the converted one: inside the folder, its sha256 as recorded.
            try:
                return verified_file(folder, entry)
            except ValueError as error:
                raise ModelsMissingError(
                    f"{folder}: {name}: {error}; run `{CONVERT_COMMAND} --force`"
                ) from None

        entries = {name: models.get(name) for name in MODEL_NAMES}
        paths = {name: checked(name, entry) for name, entry in entries.items()}
        fused_entry = manifest.get("fused") if fused else None
        fused_path = checked("fused graph", fused_entry) if fused_entry else None
        fused_session = _open(fused_path, threads, device) if fused_path else None
        taggers = []
        for name, entry in entries.items():
            if not isinstance(entry.get("vocabulary"), str) or not isinstance(entry.get("tags"), list):
                raise ModelsMissingError(
                    f"{manifest_path}: {name} is malformed; run `{CONVERT_COMMAND} --force`"
                )
            # With the fused graph loaded, the per-model graphs are not needed in memory.
            session = None if fused_session else _open(paths[name], threads, device)
            taggers.append(_Tagger(name, entry["vocabulary"], list(entry["tags"]), session))
        log.debug("music model on %s", (fused_session or taggers[0].session).get_providers())
        return cls(taggers, manifest, fused_session=fused_session)

    @property
    def tag_names(self) -> dict[str, list[str]]:
        return {tagger.vocabulary: tagger.tags for tagger in self.taggers}

    def run_patches(self, patches: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Log-mel patches [N, 187, 96] -> {vocabulary: (probabilities [N, T], penultimate [N, 200])}."""
        if self.fused_session is not None:
            return self._run_fused(patches)
        outputs = {}
        for tagger in self.taggers:
            chunks = [
                tagger.session.run(None, {"patches": patches[i : i + BATCH_PATCHES]})
                for i in range(0, len(patches), BATCH_PATCHES)
            ]
            outputs[tagger.vocabulary] = (
                np.concatenate([c[0] for c in chunks]),
                np.concatenate([c[1] for c in chunks]),
            )
        return outputs

    def _run_fused(self, patches: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        names = [output.name for output in self.fused_session.get_outputs()]
        chunks = [
            dict(
                zip(
                    names,
                    self.fused_session.run(None, {"patches": patches[i : i + BATCH_PATCHES]}),
                    strict=True,
                )
            )
            for i in range(0, len(patches), BATCH_PATCHES)
        ]
        return {
            tagger.vocabulary: tuple(
                np.concatenate([chunk[f"{tagger.vocabulary}_{kind}"] for chunk in chunks])
                for kind in ("probabilities", "penultimate")
            )
            for tagger in self.taggers
        }

    def analyze(
        self,
        audio: np.ndarray,
        sample_rate: int = 16000,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    ) -> MusicSegments:
        """Per-segment tags and embeddings of float32 mono audio (resampled with soxr HQ if needed)."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (1-D array), got shape {audio.shape}")
        if audio.size == 0:
            raise ValueError("empty audio")
        duration = audio.size / sample_rate
        if sample_rate != self.front_end.sample_rate:
            import soxr

            audio = soxr.resample(audio, sample_rate, self.front_end.sample_rate, quality="HQ").astype(
                np.float32
            )
        step = self.front_end.sample_rate  # one-second views: the spectrogram is never held whole
        blocks = (audio[i : i + step] for i in range(0, audio.size, step))
        return self.analyze_stream(blocks, segment_seconds, duration=duration)

    def analyze_stream(
        self,
        blocks: Iterable[np.ndarray],
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        duration: float | None = None,
        min_samples: int = 1,
        min_fraction: float = DEFAULT_MIN_FRACTION,
    ) -> MusicSegments:
        """`analyze` of consecutive float32 mono blocks at the front end's rate (16 kHz), as they come.

        Memory holds the spectrogram of one segment and one batch of patches, whatever the length of the
        audio; the result equals `analyze` of the joined blocks. `duration` (seconds) overrides the
        length the segments are cut from (default: the number of samples / 16 kHz). Fewer than
        `min_samples` samples raise ValueError.
        """
        analysis = _StreamingAnalysis(self, segment_seconds, min_fraction)
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 1:
                raise ValueError(f"expected mono audio (1-D array), got shape {block.shape}")
            if not np.isfinite(block).all():
                raise ValueError("audio contains NaN or infinite samples")
            analysis.push(block)
        received = analysis.spectrogram.received
        if received == 0:
            raise ValueError("empty audio")
        if received < min_samples:
            raise ValueError(f"too short to tag ({received / self.front_end.sample_rate:.3f} s of audio)")
        return analysis.finish(duration)

    def analyze_file(
        self,
        path: str | os.PathLike,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        start: float = 0.0,
        end: float | None = None,
        refuse_silence: bool = False,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        also: tuple[int, Callable[[np.ndarray], None]] | None = None,
    ) -> MusicSegments:
        """Decode (PyAV, soxr HQ to 16 kHz mono) and analyse block by block; raises MediaError for
        unusable files, including files outside `engine.media.limits`, and SilentAudioError for silence
        when `refuse_silence`. Memory does not grow with the file's length.

        `also` = (rate, consumer): the same decode also hands the audio at `rate` to `consumer`, block by
        block (the rhythm analysis at 22050 Hz), so a file is decoded once for both."""
        from viml.engine.media import iter_audio_rates

        peak = 0.0
        rates = (self.front_end.sample_rate,) if also is None else (self.front_end.sample_rate, also[0])

        def blocks() -> Iterator[np.ndarray]:
            nonlocal peak
            for step in iter_audio_rates(path, rates, start=start, end=end):
                block = step[0]
                if block.size:
                    peak = max(peak, float(np.abs(block).max()))
                if also is not None:
                    also[1](step[1])
                yield block

        try:
            result = self.analyze_stream(
                blocks(), segment_seconds, min_samples=self.front_end.n_fft, min_fraction=min_fraction
            )
        except ValueError as error:
            raise MediaError(path, str(error)) from error
        if refuse_silence and peak < SILENCE_PEAK:
            raise SilentAudioError(path, "the audio is silent (peak below -80 dBFS): nothing to tag")
        if start:
            result = replace(result, starts=result.starts + start, ends=result.ends + start)
        return result


def _open(path: Path, threads: int | None, device: str):
    from viml.engine.runtime.providers import create_session

    if not path.exists():
        raise ModelsMissingError(f"{path} is missing; run `{CONVERT_COMMAND}`")
    try:
        return create_session(path, device, threads)
    except UserFacingError as error:  # a file onnxruntime cannot load
        raise ModelsMissingError(
            f"{path} cannot be loaded ({error}); run `{CONVERT_COMMAND} --force`"
        ) from error


def _segment_means(values: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    sums = np.zeros((count, values.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, values)
    return (sums / np.bincount(owners, minlength=count)[:, None]).astype(np.float32)


# Rows the streamed front end computes at a time (about 16 s of audio, ~5 MB of FFT buffers): fewer,
# larger steps cost less than one per decoded block (BLAS and FFT calls have a fixed overhead).
_ROWS_PER_STEP = 1024


class _StreamingLogMel:
    """Rows of `log_mel_spectrogram(whole signal)`, computed as the signal arrives block by block.

    Only the samples later rows can reach are kept (the reflect padding at the end reaches back
    n_fft / 2 + 1 samples). Each call runs the one-shot front end on the window its rows need, so rows
    are the same computation as for the whole signal.
    """

    def __init__(self, config: FrontEndConfig) -> None:
        if (config.n_fft // 2) % config.hop_length:
            raise ValueError("streaming needs n_fft / 2 to be a multiple of the hop length")
        self.config = config
        self.pad = config.n_fft // 2
        self.audio = np.zeros(0, np.float32)  # received samples from `offset` on
        self.offset = 0
        self.received = 0
        self.next_row = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; returns the rows that no longer depend on samples still to come."""
        self.audio = np.concatenate([self.audio, samples])
        self.received += len(samples)
        ready = (self.received - self.pad) // self.config.hop_length + 1 if self.received > self.pad else 0
        return self._rows(ready) if ready - self.next_row >= _ROWS_PER_STEP else self._rows(0)

    def finish(self) -> np.ndarray:
        """The remaining rows, up to the end of the signal."""
        if self.offset == 0 and self.next_row == 0:  # all of it is here: the one-shot front end
            rows = log_mel_spectrogram(self.audio, self.config)
            self.next_row = len(rows)
            return rows
        return self._rows(1 + self.received // self.config.hop_length)

    def _rows(self, stop: int) -> np.ndarray:
        if stop <= self.next_row:
            return np.zeros((0, self.config.n_mels), np.float32)
        hop, pad, last = self.config.hop_length, self.pad, self.received - 1
        # Samples of the reflect-padded signal behind rows next_row..stop-1, as indices into the signal.
        index = np.abs(np.arange(self.next_row * hop - pad, (stop - 1) * hop + pad))
        index = np.where(index > last, 2 * last - index, index)
        window = self.audio[index - self.offset]
        rows = log_mel_spectrogram(window, self.config)[pad // hop : pad // hop + stop - self.next_row]
        self.next_row = stop
        keep_from = max(0, min(stop * hop - pad, self.received - pad - 1))
        if keep_from > self.offset:
            self.audio = self.audio[keep_from - self.offset :].copy()
            self.offset = keep_from
        return rows


class _StreamingAnalysis:
    """Segments of a streamed signal through the taggers: the rules of `analyze`, one segment at a time.

    A segment is analysed once it is surely whole (a second of audio past its end has arrived); the
    segments left at the end follow `segment_bounds` of the final duration. Patches run in batches of
    BATCH_PATCHES in order, as `analyze` always ran them.
    """

    def __init__(
        self, model: MusicModel, segment_seconds: float, min_fraction: float = DEFAULT_MIN_FRACTION
    ) -> None:
        segment_bounds(0.0, 1.0, segment_seconds)  # refuses a bad segment length before any work
        self.model = model
        self.config = model.front_end
        self.segment_seconds = segment_seconds
        self.min_fraction = min_fraction
        self.frames_per_second = self.config.sample_rate / self.config.hop_length
        self.spectrogram = _StreamingLogMel(self.config)
        self.rows = np.zeros((0, self.config.n_mels), np.float32)  # held rows, from `first_row` on
        self.first_row = 0
        self.position = 0.0  # start of the next segment, summed as segment_bounds sums it
        self.analysed = 0  # segments whose patches are queued
        self.pending: list[np.ndarray] = []
        self.owners: list[int] = []
        self.outputs: list[dict[str, tuple[np.ndarray, np.ndarray]]] = []
        self.descriptors: list[dict[str, float]] = []  # per queued segment, in order

    def push(self, block: np.ndarray) -> None:
        self._hold(self.spectrogram.push(block))
        arrived = self.spectrogram.received / self.config.sample_rate
        while self.position + self.segment_seconds <= arrived - 1.0:
            first, last = self._rows_of(self.position, self.position + self.segment_seconds, None)
            if last > self.first_row + len(self.rows):
                break
            self._queue(first, last, self.analysed)
            self.analysed += 1
            self.position += self.segment_seconds
            self._forget(int(round(self.position * self.frames_per_second)))

    def finish(self, duration: float | None) -> MusicSegments:
        self._hold(self.spectrogram.finish())
        if duration is None:
            duration = self.spectrogram.received / self.config.sample_rate
        segments = segment_bounds(0.0, duration, self.segment_seconds, self.min_fraction)
        total_rows = self.first_row + len(self.rows)
        for segment in segments[self.analysed :]:
            self._queue(*self._rows_of(segment.start, segment.end, total_rows), segment.index)
        self._run(len(self.pending))
        owners = np.asarray(self.owners)
        embeddings, probabilities = [], {}
        for tagger in self.model.taggers:
            probs, penultimate = (
                np.concatenate([output[tagger.vocabulary][k] for output in self.outputs]) for k in (0, 1)
            )
            probabilities[tagger.vocabulary] = _segment_means(probs, owners, len(segments))
            embeddings.append(_segment_means(penultimate, owners, len(segments)))
        return MusicSegments(
            starts=np.array([s.start for s in segments], dtype=np.float64),
            ends=np.array([s.end for s in segments], dtype=np.float64),
            embeddings=np.concatenate(embeddings, axis=1).astype(np.float32),
            tag_probabilities=probabilities,
            tag_names=self.model.tag_names,
            descriptors={
                name: np.array([d[name] for d in self.descriptors[: len(segments)]], np.float32)
                for name in DESCRIPTORS
            },
        )

    def _rows_of(self, start: float, end: float, total_rows: int | None) -> tuple[int, int]:
        """Spectrogram rows [first, last) of a segment (clamped to the signal once its end is known)."""
        first = int(round(start * self.frames_per_second))
        last = int(round(end * self.frames_per_second))
        if total_rows is not None:
            first, last = min(first, total_rows - 1), min(last, total_rows)
        return first, max(first + 1, last)

    def _hold(self, rows: np.ndarray) -> None:
        if len(rows):
            self.rows = np.concatenate([self.rows, rows])

    def _forget(self, before_row: int) -> None:
        if before_row > self.first_row:
            self.rows = self.rows[before_row - self.first_row :]
            self.first_row = before_row

    def _queue(self, first: int, last: int, owner: int) -> None:
        span = self.rows[first - self.first_row : last - self.first_row]
        self.descriptors.append(segment_descriptors(span, self.config))  # the same rows the tagger sees
        patch_frames = self.config.patch_frames
        for start in patch_starts(len(span), patch_frames):
            self.pending.append(repeat_pad(span[start : start + patch_frames], patch_frames))
            self.owners.append(owner)
        while len(self.pending) >= BATCH_PATCHES:
            self._run(BATCH_PATCHES)

    def _run(self, count: int) -> None:
        if count:
            self.outputs.append(self.model.run_patches(np.stack(self.pending[:count])))
            del self.pending[:count]


def is_silent(audio: np.ndarray) -> bool:
    """True when the signal carries nothing to tag (every tag would describe silence)."""
    return audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK
