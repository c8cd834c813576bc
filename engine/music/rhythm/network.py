"""BeatNet's beat/downbeat CRNN at run time: the converted ONNX graph on onnxruntime (no torch).

`BeatNetModel.load(model=1)` opens `<models_dir>/beatnet/beatnet_1.onnx` after checking it against the
sha256 its manifest recorded (`viml convert-beatnet` writes both). `activations(audio)` gives, per
feature frame (50 per second, row i at i / 50 s), the softmax probabilities [beat, downbeat].

By default the LSTM runs over the whole track in one sequence from a zero state, as BeatNet runs it;
the stream runs it piece by piece carrying the state, which gives the same numbers (bitwise, measured).
On CPU this is also the fastest way (bench/beatnet.py: ~0.3 s for 4 minutes on one thread; a second
thread makes each of the tiny per-frame steps slower, hence one thread unless told otherwise).

A `ChunkPlan` instead runs a long track as a batch of chunks (matrix-matrix instead of matrix-vector
steps, for accelerators): chunk c gives the frames [c*L, (c+1)*L) and starts its LSTM from a zero state
W frames earlier. The network's state remembers long: W = 10 s leaves differences up to 0.99 from the
whole-sequence run on real music, W = 40 s (CHUNKED) up to ~7e-4; on this 2-core CPU even the
chunked batches are slower than the single sequence, so chunking is opt-in. Chunk 0 starts at the
track's start (exact), a short chunk's trailing rows are zero padding a unidirectional LSTM never looks
back at, and which chunks share a batch depends only on their index, so streamed and one-shot chunked
results are the same numbers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from viml.core.paths import models_dir
from viml.engine.music.manifest import MANIFEST_NAME, verified_file
from viml.engine.music.runtime import ModelsMissingError

from .features import BANDS, BEATNET_FEATURES, FEATURE_DIM, FeatureStream, feature_bands

log = logging.getLogger(__name__)

BEATNET_VERSION = "1.1.3"
# Bump when the conversion output changes, so `viml convert-beatnet` redoes stale folders.
CONVERTER_VERSION = 1
CONVERT_COMMAND = "viml convert-beatnet"
# BeatNet's three trainings, named by the data set each one held out of training.
HELD_OUT = {1: "GTZAN", 2: "Ballroom", 3: "Rock Corpus"}
LSTM_LAYERS, LSTM_HIDDEN = 2, 150
INPUTS = ("features", "hidden_in", "cell_in")
OUTPUTS = ("activations", "hidden_out", "cell_out")


def beatnet_folder() -> Path:
    return models_dir() / "beatnet"


def model_file(number: int) -> str:
    return f"beatnet_{number}.onnx"


class BeatNetMissingError(ModelsMissingError):
    """The converted BeatNet models are not there (or not the converted ones)."""


@dataclass(frozen=True)
class ChunkPlan:
    """How a long track is cut for batched runs (frames at 50 per second); see bench/beatnet.py."""

    chunk_frames: int = 2000  # 40 s of output per chunk
    warmup_frames: int = 2000  # 40 s run before a chunk's own frames, from a zero state
    batch_chunks: int = 8  # chunks per onnxruntime call (~8 x 4000 x 272 floats in)

    def __post_init__(self) -> None:
        if self.chunk_frames < 1 or self.warmup_frames < 0 or self.batch_chunks < 1:
            raise ValueError(f"bad chunk plan {self}")


# The measured chunked plan: within ~7e-4 of the whole-sequence run on real music (docs/sections/beats.md).
CHUNKED = ChunkPlan()
# Rows the exact stream runs per call, carrying the state (fewer, larger calls; ~20 s of audio).
_SEQUENCE_STEP = 1000


def _zero_state(batch: int) -> np.ndarray:
    return np.zeros((LSTM_LAYERS, batch, LSTM_HIDDEN), np.float32)


class BeatNetModel:
    """One of BeatNet's CRNNs on onnxruntime; call `activations`, `stream` or `sequence`."""

    def __init__(
        self, session: object, manifest: dict, number: int, sha256: str, plan: ChunkPlan | None = None
    ) -> None:
        self.session = session
        self.manifest = manifest
        self.number = number
        self.sha256 = sha256
        self.plan = plan

    @property
    def model_id(self) -> str:
        return model_id(self.number, self.sha256, self.plan)

    @staticmethod
    def installed_id(folder: Path | None = None, model: int = 1, plan: ChunkPlan | None = None) -> str:
        """`model_id` of the converted model `load` would open, without opening a session (a scan's
        driver needs only the id; its workers load the model)."""
        _, manifest, entry = _verified_model(folder, model)
        return model_id(model, entry["sha256"], plan)

    @classmethod
    def load(
        cls,
        folder: Path | None = None,
        model: int = 1,
        device: str = "auto",
        threads: int | None = None,
        plan: ChunkPlan | None = None,
    ) -> BeatNetModel:
        """Open converted model `model` (1, 2 or 3: GTZAN, Ballroom, Rock Corpus held out of training);
        `device` "auto" (CUDA when it really works), "cuda" or "cpu"; `threads` onnxruntime intra-op
        threads (None: 1, the fastest for this small LSTM on CPU, where a second thread makes each
        tiny per-frame step slower); `plan` None for the exact whole-sequence run, or a ChunkPlan
        (e.g. CHUNKED) for batched chunks."""
        from viml.engine.runtime.providers import create_session

        path, manifest, entry = _verified_model(folder, model)
        # The file is the converted one (sha256 checked), so a failure here is onnxruntime's or the
        # provider's, and create_session already says it in plain words.
        session = create_session(path, device, threads or 1)
        names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
        if names != (INPUTS, OUTPUTS):
            raise BeatNetMissingError(
                f"{path} is not a converted BeatNet graph; run `{CONVERT_COMMAND} --force`"
            )
        return cls(session, manifest, model, entry["sha256"], plan)

    def sequence(
        self, features: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The exact run over features [T, 272] in one sequence (BeatNet's own way): ([T, 2], state).
        Passing the returned state to the next call continues the same sequence."""
        features = _checked_features(features)
        hidden, cell = state if state is not None else (_zero_state(1), _zero_state(1))
        if not len(features):
            return np.zeros((0, 2), np.float32), (hidden, cell)
        activations, hidden, cell = self.session.run(
            None, {"features": features[None], "hidden_in": hidden, "cell_in": cell}
        )
        return activations[0], (hidden, cell)

    def run_features(self, features: np.ndarray) -> np.ndarray:
        """Activations [T, 2] of a whole track's features [T, 272] (whole sequence, or chunked)."""
        run = _runner(self)
        run.push(_checked_features(features))
        return run.finish()

    def activations(self, audio: np.ndarray) -> np.ndarray:
        """[T, 2] float32 beat/downbeat probabilities of float32 mono audio at 22050 Hz."""
        stream = self.stream(keep_bands=False)
        stream.push(audio)
        return stream.finish()[0]

    def stream(self, keep_bands: bool = True) -> ActivationStream:
        return ActivationStream(self, keep_bands)

    def _run_batch(self, inputs: np.ndarray) -> np.ndarray:
        activations, _, _ = self.session.run(
            None,
            {
                "features": inputs,
                "hidden_in": _zero_state(len(inputs)),
                "cell_in": _zero_state(len(inputs)),
            },
        )
        return activations


def _runner(model: BeatNetModel) -> _SequenceRun | _ChunkedRun:
    return _SequenceRun(model) if model.plan is None else _ChunkedRun(model)


class _SequenceRun:
    """Feature rows in, the whole-sequence activations out: runs held rows in steps, carrying the state."""

    def __init__(self, model: BeatNetModel) -> None:
        self.model = model
        self.held: list[np.ndarray] = []
        self.count = 0
        self.state: tuple[np.ndarray, np.ndarray] | None = None
        self.outputs: list[np.ndarray] = []

    def push(self, rows: np.ndarray) -> None:
        if len(rows):
            self.held.append(rows)
            self.count += len(rows)
        if self.count >= _SEQUENCE_STEP:
            self._run()

    def finish(self) -> np.ndarray:
        self._run()
        return np.concatenate([np.zeros((0, 2), np.float32), *self.outputs])

    def _run(self) -> None:
        if self.count:
            activations, self.state = self.model.sequence(np.concatenate(self.held), self.state)
            self.outputs.append(activations)
            self.held, self.count = [], 0


class _ChunkedRun:
    """Feature rows in, chunked activations out; holds only the rows of chunks not yet run."""

    def __init__(self, model: BeatNetModel) -> None:
        self.model = model
        self.plan = model.plan or CHUNKED
        self.rows = np.zeros((0, FEATURE_DIM), np.float32)  # rows from `first_row` on
        self.first_row = 0
        self.total = 0
        self.next_chunk = 0
        self.outputs: list[np.ndarray] = []

    def push(self, rows: np.ndarray) -> None:
        if len(rows):
            self.rows = np.concatenate([self.rows, rows])
            self.total += len(rows)
        plan = self.plan
        while (self.next_chunk + plan.batch_chunks) * plan.chunk_frames <= self.total:
            self._run(plan.batch_chunks)

    def finish(self) -> np.ndarray:
        last = -(-self.total // self.plan.chunk_frames)  # chunks covering every row
        while self.next_chunk < last:
            self._run(min(self.plan.batch_chunks, last - self.next_chunk))
        return np.concatenate([np.zeros((0, 2), np.float32), *self.outputs])

    def _run(self, count: int) -> None:
        length, warmup = self.plan.chunk_frames, self.plan.warmup_frames
        spans = []  # (first input row, first output row, end row) per chunk
        for chunk in range(self.next_chunk, self.next_chunk + count):
            start = chunk * length
            spans.append((max(0, start - warmup), start, min(start + length, self.total)))
        inputs = np.zeros((count, max(end - first for first, _, end in spans), FEATURE_DIM), np.float32)
        for k, (first, _, end) in enumerate(spans):
            inputs[k, : end - first] = self.rows[first - self.first_row : end - self.first_row]
        activations = self.model._run_batch(inputs)
        for k, (first, start, end) in enumerate(spans):
            self.outputs.append(activations[k, start - first : end - first])
        self.next_chunk += count
        keep_from = max(0, self.next_chunk * length - warmup)
        if keep_from > self.first_row:
            self.rows = self.rows[keep_from - self.first_row :]
            self.first_row = keep_from


class ActivationStream:
    """`BeatNetModel.activations` of audio arriving in blocks (float32 mono, 22050 Hz).

    `push(samples)` may run the network (every ~20 s of audio, or per batch of chunks); `finish()` returns
    (activations [T, 2] float32, log bands [T, 136] float16), the bands being the first half of the
    network's feature rows, kept for section analysis (None when `keep_bands` is False). Memory holds
    the bands, the outputs and the feature rows of one step (or one batch of chunks), never the audio.
    """

    def __init__(self, model: BeatNetModel, keep_bands: bool = True) -> None:
        self.features = FeatureStream(BEATNET_FEATURES)
        self.network = _runner(model)
        self.keep_bands = keep_bands
        self.bands: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.size and not np.isfinite(samples).all():
            raise ValueError("audio contains NaN or infinite samples")
        self._take(self.features.push(samples))

    def finish(self) -> tuple[np.ndarray, np.ndarray | None]:
        self._take(self.features.finish())
        activations = self.network.finish()
        if not self.keep_bands:
            return activations, None
        return activations, np.concatenate([np.zeros((0, BANDS), np.float16), *self.bands])

    def _take(self, rows: np.ndarray) -> None:
        if len(rows):
            if self.keep_bands:
                self.bands.append(feature_bands(rows).astype(np.float16))
            self.network.push(rows)


def _checked_features(features: np.ndarray) -> np.ndarray:
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
        raise ValueError(f"expected features [T, {FEATURE_DIM}], got shape {features.shape}")
    return features


def model_id(number: int, sha256: str, plan: ChunkPlan | None = None) -> str:
    """What the catalog records: the ONNX file's hash, plus the chunk plan when one is used (it shapes
    the activations too)."""
    model_id = f"beatnet{number}-{sha256[:16]}"
    if plan is not None:
        model_id += f"-c{plan.chunk_frames}w{plan.warmup_frames}"
    return model_id


def _verified_model(folder: Path | None, model: int) -> tuple[Path, dict, dict]:
    """(ONNX path, manifest, manifest entry) of converted model `model`, its sha256 checked."""
    if model not in HELD_OUT:
        raise ValueError(f"BeatNet model must be one of {sorted(HELD_OUT)}, got {model!r}")
    folder = Path(folder) if folder else beatnet_folder()
    manifest = _read_manifest(folder)
    entry = manifest["models"].get(str(model))
    try:
        return verified_file(folder, entry), manifest, entry
    except ValueError as error:
        raise BeatNetMissingError(
            f"{folder}: BeatNet model {model}: {error}; run `{CONVERT_COMMAND} --force`"
        ) from None


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise BeatNetMissingError(
            f"the BeatNet beat model is not converted yet ({path} is missing); run `{CONVERT_COMMAND}`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BeatNetMissingError(
            f"{path} is unreadable ({error}); run `{CONVERT_COMMAND} --force`"
        ) from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise BeatNetMissingError(f"{path} is malformed; run `{CONVERT_COMMAND} --force`")
    if manifest.get("features") != BEATNET_FEATURES.as_dict():
        raise BeatNetMissingError(
            f"{folder} was converted for other input features; run `{CONVERT_COMMAND} --force`"
        )
    return manifest
