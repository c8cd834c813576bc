"""The ORIGINAL musicnn TensorFlow model, for reference values and the speed baseline. TF venv only.

Runs under `/root/.cache/viml/tf-venv` (tensorflow-cpu, librosa, numpy), never in the product venv.
It builds musicnn's own TF1 graph from `models.py` inside the wheel, restores the shipped checkpoint,
and computes the front end with librosa as musicnn does, except for two fixes of musicnn's pitfalls:
the log is taken in float32 (musicnn's float16 cast overflows under NumPy 2) and every patch gets its
own outputs (musicnn's `extractor()` repeats the first patch's features).

    python musicnn_tf.py reference WHEEL AUDIO.npz OUT.npz   # per-piece taggrams + penultimate
    python musicnn_tf.py bench WHEEL AUDIO.npz REPEATS       # prints JSON timings
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

# musicnn's graph uses tf.compat.v1.layers, which TF >= 2.16 only provides through tf_keras (Keras 2).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("MTT_musicnn", "MSD_musicnn")
SR, N_FFT, HOP, N_MELS, PATCH = 16000, 512, 256, 96, 187


def log_mel(audio: np.ndarray) -> np.ndarray:
    import librosa

    # pad_mode="reflect": librosa's default when musicnn was trained (0.7); newer librosa pads zeros.
    mel = librosa.feature.melspectrogram(
        y=audio, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS, pad_mode="reflect"
    ).T
    return np.log10(10000 * mel.astype(np.float32) + 1).astype(np.float32)


def patches(features: np.ndarray) -> np.ndarray:
    """musicnn's `batch_data`: non-overlapping 187-frame patches from the start."""
    starts = range(0, features.shape[0] - PATCH + 1, PATCH)
    return np.stack([features[s : s + PATCH] for s in starts])


class TfMusicnn:
    def __init__(self, package_root: Path, model: str) -> None:
        import tensorflow as tf

        sys.path.insert(0, str(package_root))
        from musicnn import models  # the original architecture code from the wheel

        tf.compat.v1.disable_eager_execution()
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.compat.v1.placeholder(tf.float32, [None, PATCH, N_MELS])
            self.is_training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(self.x, self.is_training, model, 50)
            self.probabilities = tf.nn.sigmoid(outputs[0])
            self.penultimate = outputs[-1]
            self.session = tf.compat.v1.Session(graph=self.graph)
            # The shipped `checkpoint` file points at the author's home; read the bundle directly.
            reader = tf.compat.v1.train.NewCheckpointReader(str(package_root / "musicnn" / model) + "/")
            for variable in tf.compat.v1.global_variables():
                variable.load(reader.get_tensor(variable.op.name), self.session)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.session.run(
            [self.probabilities, self.penultimate], feed_dict={self.x: batch, self.is_training: False}
        )


def _unpack(wheel: Path, target: Path) -> Path:
    if wheel.is_dir():
        return wheel
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def reference(wheel: Path, audio_path: Path, out_path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _unpack(wheel, Path(tmp))
        audio = np.load(audio_path, allow_pickle=False)
        models = {name: TfMusicnn(root, name) for name in MODELS}
        stored: dict[str, np.ndarray] = {}
        for piece in audio.files:
            signal = audio[piece]
            features = log_mel(signal)
            stored[f"{piece}/audio_sha256"] = np.array(hashlib.sha256(signal.tobytes()).hexdigest())
            # Edge frames (reflect padding) and a middle stretch pin the front end down.
            stored[f"{piece}/mel_head"] = features[:6]
            stored[f"{piece}/mel_middle"] = features[300:306]
            for name, model in models.items():
                probabilities, penultimate = model(patches(features))
                stored[f"{piece}/{name}/taggram"] = probabilities.astype(np.float32)
                stored[f"{piece}/{name}/penultimate"] = penultimate.astype(np.float32)
        np.savez_compressed(out_path, **stored)


def bench(wheel: Path, audio_path: Path, repeats: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = _unpack(wheel, Path(tmp))
        audio = np.load(audio_path, allow_pickle=False)
        signals = [audio[piece] for piece in audio.files]
        models = [TfMusicnn(root, name) for name in MODELS]
        for model in models:  # warm-up
            model(patches(log_mel(signals[0])))
        start = time.perf_counter()
        for _ in range(repeats):
            for signal in signals:
                batch = patches(log_mel(signal))
                for model in models:
                    model(batch)
        elapsed = time.perf_counter() - start
    seconds_of_audio = repeats * sum(len(s) for s in signals) / SR
    print(json.dumps({"seconds_of_audio": seconds_of_audio, "compute_seconds": elapsed}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "reference":
        reference(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif command == "bench":
        bench(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
