"""Real-time factor of music tagging (seconds of audio per second of compute), measured in one run.

    python bench/music_model.py [--seconds 60] [--repeats 3] [--json PATH]

Paths compared on the same rendered music (both taggers, MTT + MSD, front end included):
- runtime: `MusicModel.analyze` on onnxruntime (CPU), with a few session settings (threads, batch);
- torch: the converted torch modules, eager, on the numpy front end's patches;
- tensorflow: the original musicnn graph in the TF venv (subprocess), when that venv exists.
Ratios are printed against the torch path measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TF_PYTHON = Path.home() / ".cache" / "viml" / "tf-venv" / "bin" / "python"


def _best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of music to tag")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    import torch
    from viml.engine.music import runtime
    from viml.engine.music.frontend import log_mel_spectrogram
    from viml.engine.music.reference_audio import PIECES, render_piece
    from viml.engine.music.runtime import MusicModel
    from viml.export_onnx.musicnn import convert, find_musicnn, load_checkpoint
    from viml.export_onnx.musicnn_torch import from_tf_tensors

    convert()
    per_piece = args.seconds / len(PIECES)
    audio = np.concatenate([render_piece(piece, per_piece) for piece in PIECES])
    seconds = audio.size / 16000
    cores = os.cpu_count()
    print(
        f"{seconds:.0f} s of rendered music, {cores} CPU cores, both taggers (MTT + MSD), front end included"
    )
    results: dict[str, float | str] = {"seconds_of_audio": seconds, "cpu_cores": cores}

    variants = {}
    for threads in (1, 2):
        for batch in (8, 32):
            model = MusicModel.load(device="cpu", threads=threads)
            runtime.BATCH_PATCHES = batch
            model.analyze(audio[:160000])  # warm-up
            elapsed = _best_of(args.repeats, lambda m=model: m.analyze(audio))
            variants[f"onnxruntime {threads} thread(s), batch {batch}"] = seconds / elapsed
    runtime.BATCH_PATCHES = 32
    best_name = max(variants, key=variants.get)

    source = find_musicnn()
    torch_models = [from_tf_tensors(load_checkpoint(source, name)) for name in ("MTT_musicnn", "MSD_musicnn")]
    torch.set_num_threads(cores or 1)
    frames = log_mel_spectrogram(audio)
    patches = torch.from_numpy(np.stack([frames[s : s + 187] for s in range(0, len(frames) - 186, 187)]))

    def run_torch() -> None:
        log_mel_spectrogram(audio)
        with torch.no_grad():
            for model in torch_models:
                model(patches)

    run_torch()
    torch_rtf = seconds / _best_of(args.repeats, run_torch)

    tf_rtf: float | str = f"not available (no TF venv at {TF_PYTHON})"
    if TF_PYTHON.exists():
        with tempfile.TemporaryDirectory() as tmp:
            audio_path = Path(tmp) / "audio.npz"
            np.savez(audio_path, music=audio)
            script = ROOT / "scripts" / "musicnn_tf.py"
            command = [
                str(TF_PYTHON),
                str(script),
                "bench",
                str(source.path),
                str(audio_path),
                str(args.repeats),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode == 0:
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                tf_rtf = figures["seconds_of_audio"] / figures["compute_seconds"] * 1.0
            else:
                tf_rtf = "failed: " + done.stderr.strip().splitlines()[-1][:200]

    print(f"\n{'path':<44}{'x real time':>12}{'vs torch':>10}")
    for name, rtf in variants.items():
        print(f"{name:<44}{rtf:>12.1f}{rtf / torch_rtf:>9.2f}x")
    print(f"{'torch eager (converted modules)':<44}{torch_rtf:>12.1f}{1.0:>9.2f}x")
    if isinstance(tf_rtf, float):
        print(f"{'tensorflow (original musicnn graph)':<44}{tf_rtf:>12.1f}{tf_rtf / torch_rtf:>9.2f}x")
    else:
        print(f"{'tensorflow (original musicnn graph)':<44}{tf_rtf:>12}")
    print(f"\nruntime path (best setting: {best_name}): {variants[best_name]:.1f}x real time (target 200x)")
    results.update(
        {
            "runtime_best_setting": best_name,
            "runtime_times_real_time": variants[best_name],
            "runtime_variants_times_real_time": variants,
            "torch_times_real_time": torch_rtf,
            "tensorflow_times_real_time": tf_rtf,
            "runtime_vs_torch": variants[best_name] / torch_rtf,
            "runtime_vs_tensorflow": variants[best_name] / tf_rtf if isinstance(tf_rtf, float) else "n/a",
        }
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
