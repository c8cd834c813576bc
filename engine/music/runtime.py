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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from viml.engine.music.frontend import (
    FRONT_END,
    FrontEndConfig,
    log_mel_spectrogram,
    patch_starts,
    repeat_pad,
)
from viml.engine.music.manifest import CONVERT_COMMAND, MANIFEST_NAME, MODEL_NAMES, model_folder
from viml.engine.music.types import MusicSegments
from viml.engine.segments import DEFAULT_SEGMENT_SECONDS, segment_bounds

from viml.errors import MediaError, UserFacingError

log = logging.getLogger(__name__)

DEFAULT_TAG_THRESHOLD = 0.3  # the paper keeps tagger outputs above 0.3 for text synthesis
# Patches per onnxruntime call: large enough to amortise call overhead, small enough to bound memory
# (~14 MB of activations per patch). Measured flat from 4 to 32 (bench/music_model.py).
BATCH_PATCHES = 16
# Peak amplitude under which a signal counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


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
        if FrontEndConfig(**manifest["front_end"]) != FRONT_END:
            raise ModelsMissingError(
                f"{folder} was converted for another front end; run `{CONVERT_COMMAND} --force`"
            )
        fused_entry = manifest.get("fused") if fused else None
        fused_session = _open(folder / fused_entry["file"], threads, device) if fused_entry else None
        taggers = []
        for name in MODEL_NAMES:
            entry = manifest["models"].get(name)
            path = folder / entry["file"] if entry else None
            if path is None or not path.exists():
                raise ModelsMissingError(f"{folder}: {name} is missing; run `{CONVERT_COMMAND}`")
            # With the fused graph loaded, the per-model graphs are not needed in memory.
            session = None if fused_session else _open(path, threads, device)
            taggers.append(_Tagger(name, entry["vocabulary"], list(entry["tags"]), session))
        log.debug("music model on %s", (fused_session or taggers[0].session).get_providers())
        return cls(taggers, manifest, fused_session=fused_session)

    @property
    def tag_names(self) -> dict[str, list[str]]:
        return {tagger.vocabulary: tagger.tags for tagger in self.taggers}

    @property
    def embedding_size(self) -> int:
        return 200 * len(self.taggers)

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
        if not np.isfinite(audio).all():
            raise ValueError("audio contains NaN or infinite samples")
        duration = audio.size / sample_rate
        if sample_rate != self.front_end.sample_rate:
            import soxr

            audio = soxr.resample(audio, sample_rate, self.front_end.sample_rate, quality="HQ").astype(
                np.float32
            )
        features = log_mel_spectrogram(audio, self.front_end)
        frames_per_second = self.front_end.sample_rate / self.front_end.hop_length
        segments = segment_bounds(0.0, duration, segment_seconds)
        patch_frames = self.front_end.patch_frames
        patches, owners = [], []
        for segment in segments:
            first = min(int(round(segment.start * frames_per_second)), len(features) - 1)
            last = max(first + 1, min(int(round(segment.end * frames_per_second)), len(features)))
            span = features[first:last]
            starts = patch_starts(len(span), patch_frames)
            for start in starts:
                patches.append(repeat_pad(span[start : start + patch_frames], patch_frames))
                owners.append(segment.index)
        outputs = self.run_patches(np.stack(patches))
        owners_array = np.asarray(owners)
        embeddings, probabilities = [], {}
        for vocabulary, (probs, penultimate) in outputs.items():
            probabilities[vocabulary] = _segment_means(probs, owners_array, len(segments))
            embeddings.append(_segment_means(penultimate, owners_array, len(segments)))
        return MusicSegments(
            starts=np.array([s.start for s in segments], dtype=np.float64),
            ends=np.array([s.end for s in segments], dtype=np.float64),
            embeddings=np.concatenate(embeddings, axis=1).astype(np.float32),
            tag_probabilities=probabilities,
            tag_names=self.tag_names,
        )

    def analyze_file(
        self,
        path: str | os.PathLike,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        start: float = 0.0,
        end: float | None = None,
    ) -> MusicSegments:
        """Decode (PyAV, soxr HQ to 16 kHz mono) and analyse; raises MediaError for unusable files."""
        from viml.engine.media import read_audio

        audio = read_audio(path, self.front_end.sample_rate, start=start, end=end)
        if audio.size < self.front_end.n_fft:
            raise MediaError(
                path, f"too short to tag ({audio.size / self.front_end.sample_rate:.3f} s of audio)"
            )
        try:
            result = self.analyze(audio, self.front_end.sample_rate, segment_seconds)
        except ValueError as error:
            raise MediaError(path, str(error)) from error
        if start:
            result = MusicSegments(
                result.starts + start,
                result.ends + start,
                result.embeddings,
                result.tag_probabilities,
                result.tag_names,
            )
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


def is_silent(audio: np.ndarray) -> bool:
    """True when the signal carries nothing to tag (every tag would describe silence)."""
    return audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK


def tags_from_probabilities(
    probabilities: dict[str, np.ndarray],
    tag_names: dict[str, list[str]],
    threshold: float = DEFAULT_TAG_THRESHOLD,
    segment: int | None = None,
) -> list[tuple[str, str, float]]:
    """(vocabulary, tag, probability) above `threshold`, highest first; one segment or the mean of all."""
    found = []
    for vocabulary, values in probabilities.items():
        row = values[segment] if segment is not None else values.mean(axis=0)
        for tag, probability in zip(tag_names[vocabulary], row, strict=True):
            if probability > threshold:
                found.append((vocabulary, tag, float(probability)))
    return sorted(found, key=lambda item: -item[2])


def tags_above(
    segments: MusicSegments, threshold: float = DEFAULT_TAG_THRESHOLD, segment: int | None = None
) -> list[tuple[str, str, float]]:
    """Tags of a `MusicSegments` above `threshold` (the paper's 0.3 drives text synthesis), highest first."""
    return tags_from_probabilities(segments.tag_probabilities, segments.tag_names, threshold, segment)
