"""Convert BeatNet's pretrained beat/downbeat CRNNs (read out of its PyPI wheel) to ONNX.

Needs torch and onnx (the `train` extra), never madmom or BeatNet's code: the wheel is a zip, and
`BeatNet/models/model_N_weights.pt` are plain state dicts, read with `torch.load(weights_only=True)`.
Each is loaded (strict) into `beatnet_torch.BeatNetCRNN`, exported with the LSTM state as inputs and
outputs, and checked against torch on the features of the wheel's own test recording and on random
features with a random carried state. Output: `<models_dir>/beatnet/beatnet_{1,2,3}.onnx`, the CC BY 4.0
licence text and `manifest.json` (source sha256, attribution, per-file sha256, feature parameters).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.music.manifest import MANIFEST_NAME, sha256_file
from viml.engine.music.rhythm.features import BANDS, BEATNET_FEATURES, FEATURE_DIM, diff_frames
from viml.engine.music.rhythm.network import (
    BEATNET_VERSION,
    CONVERTER_VERSION,
    HELD_OUT,
    INPUTS,
    LSTM_HIDDEN,
    LSTM_LAYERS,
    OUTPUTS,
    beatnet_folder,
    model_file,
)
from viml.export_onnx.wheels import WheelFiles, find_wheel, installed_root

log = logging.getLogger(__name__)

WHEEL_NAME = f"BeatNet-{BEATNET_VERSION}-py3-none-any.whl"
# Largest difference tolerated between torch and ONNX outputs at conversion time.
EXPORT_TOLERANCE = 1e-4
LICENCE = "CC BY 4.0"
ATTRIBUTION = (
    'BeatNet by Mojtaba Heydari, Frank Cwitkowitz and Zhiyao Duan: "BeatNet: CRNN and Particle '
    'Filtering for Online Joint Beat Downbeat and Meter Tracking", Proceedings of the 22nd '
    "International Society for Music Information Retrieval Conference (ISMIR), 2021. Weights from the "
    f"BeatNet {BEATNET_VERSION} PyPI package (https://github.com/mjhydri/BeatNet), licensed CC BY 4.0; "
    "converted to ONNX by ViML (architecture and weights unchanged; the graph ends in the softmax and "
    "keeps the beat and downbeat columns)."
)
TEST_RECORDING = "BeatNet/test_data/808kick120bpm.mp3"


class BeatNetSource(WheelFiles):
    """Files of the BeatNet distribution, from a wheel zip or an installed package's parent folder."""

    package = "BeatNet"
    version = BEATNET_VERSION

    def licence(self) -> str:
        return self.licence_text(("LICENSE",), "Attribution 4.0 International", "CC BY 4.0")

    def state_dict(self, number: int) -> dict:
        import torch

        data = self.read(f"BeatNet/models/model_{number}_weights.pt")
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises UnpicklingError / RuntimeError for foreign content
            raise UserFacingError(
                f"{self.path}: model_{number}_weights.pt is not a plain state dict ({error})"
            ) from error


def find_beatnet(explicit: Path | None = None, download: bool = True) -> BeatNetSource:
    """The BeatNet files: an explicit wheel/folder, VIML_BEATNET_WHEEL, the installed package, a cached
    wheel (the product's cache, then ~/.cache/viml/wheels), or `pip download` into the product's cache."""
    installed = installed_root("BeatNet", "models/model_1_weights.pt")
    return BeatNetSource(
        find_wheel("BeatNet", BEATNET_VERSION, "VIML_BEATNET_WHEEL", installed, explicit, download)
    )


def recording_features(source: BeatNetSource) -> np.ndarray:
    """Features [T, 272] of the wheel's 808 kick recording (120 BPM), decoded as the product decodes."""
    from viml.engine.media import read_audio
    from viml.engine.music.rhythm.features import log_filtered_spectrogram

    with tempfile.NamedTemporaryFile(suffix=".mp3") as file:
        file.write(source.read(TEST_RECORDING))
        file.flush()
        audio = read_audio(file.name, BEATNET_FEATURES.sample_rate)
    return log_filtered_spectrogram(audio)


def _export(model, path: Path) -> None:
    import torch
    from viml.export_onnx.beatnet_torch import zero_state

    example = (torch.zeros(2, 50, FEATURE_DIM), *zero_state(2))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on LSTM batch sizes and constant folding
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={
                "features": {0: "batch", 1: "time"},
                "activations": {0: "batch", 1: "time"},
                **{name: {1: "batch"} for name in ("hidden_in", "cell_in", "hidden_out", "cell_out")},
            },
            opset_version=17,
            dynamo=False,
        )


def parity(model, path: Path, recording: np.ndarray) -> dict[str, float]:
    """Max abs difference of ONNX vs torch over every output: the recording's features from a zero
    state (BeatNet's run), and three later stretches of it as one batch, each from the state torch
    reached there (the carried-state and batched paths, on states real music produces)."""
    import onnxruntime
    import torch
    from viml.export_onnx.beatnet_torch import zero_state

    def run_torch(*inputs: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in model(*(torch.from_numpy(x) for x in inputs))]

    whole = recording[None].astype(np.float32)
    zeros = [s.numpy() for s in zero_state(1)]
    starts, length = [len(recording) // 8 * k for k in (1, 2, 3)], len(recording) // 2
    states = [run_torch(whole[:, :start], *zeros)[1:] for start in starts]
    batch = np.concatenate([whole[:, start : start + length] for start in starts])
    carried = [np.concatenate([state[i] for state in states], axis=1) for i in (0, 1)]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    result = {}
    for name, inputs in {"recording": (whole, *zeros), "carried_state_batch": (batch, *carried)}.items():
        expected = run_torch(*inputs)
        actual = session.run(None, dict(zip(INPUTS, inputs, strict=True)))
        differences = [float(np.abs(a - e).max()) for a, e in zip(actual, expected, strict=True)]
        result[f"{name}_activations"], result[f"{name}_state"] = differences[0], max(differences[1:])
    return result


def _up_to_date(folder: Path, source_info: dict) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if not isinstance(manifest, dict) or manifest.get("converter_version") != CONVERTER_VERSION:
        return False
    if manifest.get("features") != BEATNET_FEATURES.as_dict():
        return False
    wheel = source_info.get("wheel_sha256")
    if wheel and manifest.get("source", {}).get("wheel_sha256") != wheel:
        return False
    models = manifest.get("models", {})
    if set(models) != {str(n) for n in HELD_OUT}:
        return False
    for entry in models.values():
        path = folder / entry.get("file", "")
        if not path.is_file() or sha256_file(path) != entry.get("sha256"):
            return False
    return True


def convert(wheel: Path | None = None, output: Path | None = None, force: bool = False) -> Path:
    """Convert BeatNet's models 1, 2 and 3 to ONNX; returns the model folder. Skips if up to date."""
    source = find_beatnet(wheel)
    folder = Path(output) if output else beatnet_folder()
    source_info = source.describe()
    if not force and _up_to_date(folder, source_info):
        log.info("BeatNet models in %s are up to date", folder)
        return folder
    from viml.export_onnx.beatnet_torch import from_state_dict

    started = time.perf_counter()
    licence_text = source.licence()
    recording = recording_features(source)
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    with tempfile.TemporaryDirectory(dir=folder) as staging:
        for number, held_out in HELD_OUT.items():
            try:
                model = from_state_dict(source.state_dict(number))
            except ValueError as error:
                raise UserFacingError(f"{source.path}: model_{number}_weights.pt: {error}") from error
            staged = Path(staging) / model_file(number)
            _export(model, staged)
            differences = parity(model, staged, recording)
            if max(differences.values()) > EXPORT_TOLERANCE:
                raise RuntimeError(f"BeatNet model {number}: ONNX differs from torch by {differences}")
            models[str(number)] = {
                "file": model_file(number),
                "sha256": sha256_file(staged),
                "source_file": f"BeatNet/models/model_{number}_weights.pt",
                "held_out": held_out,
                "trained_on": f"BeatNet's training data with {held_out} held out (BeatNet: model {number}, "
                f"'{held_out} out')",
                "parameters": int(sum(p.numel() for p in model.parameters())),
                "onnx_vs_torch_max_abs_difference": differences,
            }
            log.info(
                "converted BeatNet model %d (ONNX vs torch max diff %.1e)", number, max(differences.values())
            )
        for number in HELD_OUT:
            os.replace(Path(staging) / model_file(number), folder / model_file(number))
    manifest = {
        "name": "beatnet",
        "converter_version": CONVERTER_VERSION,
        "source": source_info,
        "licence": LICENCE,
        "attribution": ATTRIBUTION,
        "licence_file": "LICENSE-BeatNet.txt",
        "features": BEATNET_FEATURES.as_dict(),
        "feature_layout": {
            "dim": FEATURE_DIM,
            "log_bands": BANDS,
            "positive_differences": BANDS,
            "diff_frames": diff_frames(),
            "frames_per_second": BEATNET_FEATURES.fps,
            "frame_time": "row i is centred on sample i * hop_size",
        },
        "inputs": {
            "features": ["batch", "time", FEATURE_DIM],
            "hidden_in": [LSTM_LAYERS, "batch", LSTM_HIDDEN],
            "cell_in": [LSTM_LAYERS, "batch", LSTM_HIDDEN],
        },
        "outputs": {
            "activations": ["batch", "time", 2],
            "hidden_out": [LSTM_LAYERS, "batch", LSTM_HIDDEN],
            "cell_out": [LSTM_LAYERS, "batch", LSTM_HIDDEN],
        },
        "activation_columns": ["beat", "downbeat"],
        "models": models,
        "conversion_seconds": round(time.perf_counter() - started, 2),
    }
    (folder / manifest["licence_file"]).write_text(licence_text + "\n")
    temporary = folder / (MANIFEST_NAME + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, folder / MANIFEST_NAME)
    return folder
