"""Real-time factor of music tagging (seconds of audio per second of compute), measured in one run.

    python bench/music_model.py [--seconds 60] [--repeats 3] [--int8] [--json PATH]

Paths compared on the same rendered music (both taggers, MTT + MSD, numpy front end included):
- runtime: `MusicModel.analyze` with the fused graph (both taggers in one onnxruntime session, the
  default), at 1 and 2 intra-op threads and a few batch sizes;
- old float path: the same `analyze` on two per-model sessions (what the run time did before fusion);
- torch: the converted torch modules, eager;
- tensorflow: the original musicnn graph in the TF venv (subprocess), when that venv exists;
- with --int8: static int8 (QDQ, per-channel, calibrated on rendered world music) of the fused graph,
  with its tag agreement against float. It is measured, not used: see docs/sections/music-model.md.
Ratios are printed against torch eager and against the old float path, measured in the same run. CPU
seconds are shown next to wall seconds and the load average is printed: on a shared machine, the
single-thread CPU figure is the one closest to what an idle machine gives.
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


def _best_of(repeats: int, function) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over `repeats` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _int8_variant(fused_path: Path, folder: Path, audio: np.ndarray, repeats: int) -> dict:
    """Static QDQ int8 of the fused graph: speed and agreement with float on held-out rendered music."""
    import soxr
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from viml.demo.world.render import render_piece_audio
    from viml.demo.world.styles import STYLE_NAMES
    from viml.engine.music.frontend import log_mel_spectrogram
    from viml.engine.music.runtime import MusicModel

    def patches(seed: int) -> np.ndarray:
        chunks = []
        for i, style in enumerate(STYLE_NAMES):
            rendered = render_piece_audio(style, 12.0, seed=seed + i, sample_rate=24000)
            features = log_mel_spectrogram(
                soxr.resample(rendered, 24000, 16000, quality="HQ").astype(np.float32)
            )
            chunks.append(np.stack([features[s : s + 187] for s in range(0, len(features) - 186, 187)]))
        return np.concatenate(chunks)

    calibration = patches(100)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter({"patches": calibration[i : i + 8]} for i in range(0, len(calibration), 8))

        def get_next(self):
            return next(self.batches, None)

    int8_path = folder / "musicnn_fused_int8.onnx"
    quantize_static(
        str(fused_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
    )  # fmt: skip
    reference = MusicModel.load(folder, device="cpu", threads=1)
    held_out = patches(500)
    float_out = reference.run_patches(held_out)
    reference.fused_session = _session(int8_path, 1)
    int8_out = reference.run_patches(held_out)
    figures: dict = {"held_out_patches": len(held_out)}
    for vocabulary, (probabilities, penultimate) in float_out.items():
        quantised, quantised_penultimate = int8_out[vocabulary]
        figures[vocabulary] = {
            "probability_max_abs_difference": float(np.abs(probabilities - quantised).max()),
            "top_tag_agreement": float((probabilities.argmax(1) == quantised.argmax(1)).mean()),
            "same_tags_above_0.3": float(((probabilities > 0.3) == (quantised > 0.3)).all(1).mean()),
            "penultimate_max_abs_difference": float(np.abs(penultimate - quantised_penultimate).max()),
        }
    reference.analyze(audio[:160000])
    wall, cpu = _best_of(repeats, lambda: reference.analyze(audio))
    figures["wall_seconds"], figures["cpu_seconds"] = wall, cpu
    return figures


def _session(path: Path, threads: int):
    import onnxruntime
    from viml.engine.music.runtime import _session_options

    return onnxruntime.InferenceSession(
        str(path), _session_options(threads), providers=["CPUExecutionProvider"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of music to tag")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--int8", action="store_true", help="also measure static int8 quantisation")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    import torch
    from viml.demo.reference_audio import PIECES, render_piece
    from viml.engine.music import runtime
    from viml.engine.music.frontend import log_mel_spectrogram
    from viml.engine.music.runtime import MusicModel
    from viml.export_onnx.musicnn import convert, find_musicnn, load_checkpoint
    from viml.export_onnx.musicnn_torch import from_tf_tensors

    folder = convert()
    per_piece = args.seconds / len(PIECES)
    audio = np.concatenate([render_piece(piece, per_piece) for piece in PIECES])
    seconds = audio.size / 16000
    cores = os.cpu_count()
    load_before = _load()
    print(
        f"{seconds:.0f} s of rendered music, {cores} CPU cores, both taggers (MTT + MSD), front end included"
    )
    print(f"load average before: {load_before}")
    rows: dict[str, dict[str, float]] = {}

    def measure(name: str, function) -> None:
        function()  # warm-up
        wall, cpu = _best_of(args.repeats, function)
        rows[name] = {"wall_seconds": wall, "cpu_seconds": cpu}

    settings = [(True, 1, 16), (True, 1, 4), (True, 1, 32), (True, 2, 16), (False, 1, 16), (False, 2, 16)]
    for fused, threads, batch in settings:
        model = MusicModel.load(device="cpu", threads=threads, fused=fused)
        runtime.BATCH_PATCHES = batch
        path = "runtime fused graph" if fused else "old float path (two sessions)"
        measure(f"{path}, {threads} thread(s), batch {batch}", lambda m=model: m.analyze(audio))
    runtime.BATCH_PATCHES = 16

    source = find_musicnn()
    torch_models = [from_tf_tensors(load_checkpoint(source, name)) for name in ("MTT_musicnn", "MSD_musicnn")]
    frames = log_mel_spectrogram(audio)
    patches = torch.from_numpy(np.stack([frames[s : s + 187] for s in range(0, len(frames) - 186, 187)]))

    def run_torch() -> None:
        log_mel_spectrogram(audio)
        with torch.no_grad():
            for model in torch_models:
                model(patches)

    for threads in (1, 2):
        torch.set_num_threads(threads)
        measure(f"torch eager, {threads} thread(s)", run_torch)

    tensorflow: float | str = f"not available (no TF venv at {TF_PYTHON})"
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
                tensorflow = figures["seconds_of_audio"] / figures["compute_seconds"]
            else:
                tensorflow = "failed: " + done.stderr.strip().splitlines()[-1][:200]

    int8 = None
    if args.int8:
        with tempfile.TemporaryDirectory() as tmp:
            import shutil

            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            int8 = _int8_variant(Path(tmp) / "musicnn_fused.onnx", Path(tmp), audio, args.repeats)
        rows["int8 static QDQ fused graph, 1 thread, batch 16 (not used)"] = {
            "wall_seconds": int8.pop("wall_seconds"),
            "cpu_seconds": int8.pop("cpu_seconds"),
        }

    torch_name, old_name = "torch eager, 2 thread(s)", "old float path (two sessions), 2 thread(s), batch 16"
    for row in rows.values():
        row["times_real_time_wall"] = seconds / row["wall_seconds"]
        row["times_real_time_cpu"] = seconds / row["cpu_seconds"]
    print(f"\n{'path':<62}{'x real time':>12}{'(CPU s)':>9}{'vs torch':>10}{'vs old':>8}")
    for name, row in rows.items():
        rtf = row["times_real_time_wall"]
        print(
            f"{name:<62}{rtf:>12.1f}{row['cpu_seconds']:>9.2f}"
            f"{rtf / rows[torch_name]['times_real_time_wall']:>9.2f}x{rtf / rows[old_name]['times_real_time_wall']:>7.2f}x"
        )
    tf_text = f"{tensorflow:.1f}" if isinstance(tensorflow, float) else tensorflow
    print(f"{'tensorflow (original musicnn graph)':<62}{tf_text:>12}")
    runtime_rows = {k: v for k, v in rows.items() if k.startswith("runtime")}
    best = max(runtime_rows, key=lambda k: runtime_rows[k]["times_real_time_wall"])
    single = rows["runtime fused graph, 1 thread(s), batch 16"]
    load_after = _load()
    print(
        f"\nruntime path, best setting ({best}): {rows[best]['times_real_time_wall']:.1f}x real time (target 200x)"
    )
    print(f"runtime path, 1 thread, per CPU second: {single['times_real_time_cpu']:.1f}x real time per core")
    print(f"load average after: {load_after}")
    if int8:
        print("int8 vs float on held-out rendered music:", json.dumps(int8))
    results = {
        "seconds_of_audio": seconds,
        "cpu_cores": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "paths": rows,
        "runtime_best_setting": best,
        "runtime_times_real_time": rows[best]["times_real_time_wall"],
        "runtime_times_real_time_per_cpu_second_one_thread": single["times_real_time_cpu"],
        "runtime_vs_torch_eager": rows[best]["times_real_time_wall"]
        / rows[torch_name]["times_real_time_wall"],
        "runtime_vs_old_float_path": rows[best]["times_real_time_wall"]
        / rows[old_name]["times_real_time_wall"],
        "fused_vs_two_sessions_one_thread_cpu": rows["old float path (two sessions), 1 thread(s), batch 16"][
            "cpu_seconds"
        ]
        / single["cpu_seconds"],
        "tensorflow_times_real_time": tensorflow,
        "int8_agreement_with_float": int8 or "not measured (pass --int8)",
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
