"""BeatNet on onnxruntime: feature and activation speed, and how far chunked runs are from the exact one.

    python bench/beatnet.py [AUDIO ...] [--seconds 240] [--model 1] [--repeats 3] [--convert] [--json PATH]

AUDIO: real music files (default: the Frets on Fire songs when the Debian package is installed, else
the BeatNet wheel's 808 kick recording repeated). The first file, cut or repeated to --seconds, is
timed; every file is used for the chunked-vs-whole differences. Measured in one run:
- features: `log_filtered_spectrogram` one shot, and `FeatureStream` fed 1 s blocks;
- activations: the whole-sequence run (the default, exact) at 1 and 2 intra-op threads, and chunked
  batches (`ChunkPlan`s, warm-ups of 10 s to 40 s) with their max difference from the whole run.
Ratios are against the whole-sequence run on one thread, measured in the same run.
--convert also times `viml convert-beatnet --force` (three models, with the parity checks).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

FRETS_ON_FIRE = "/usr/share/games/fretsonfire/data/songs/*/*/song.ogg"
PLANS = [(2000, 500), (2000, 1000), (2000, 2000), (3000, 2000)]  # (chunk, warm-up) frames


def _best(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _default_audio() -> list[str]:
    songs = sorted(glob.glob(FRETS_ON_FIRE))
    if songs:
        return songs
    from viml.export_onnx.beatnet import find_beatnet

    folder = Path(tempfile.mkdtemp())
    path = folder / "808kick120bpm.mp3"
    with zipfile.ZipFile(find_beatnet(download=False).path) as archive:
        path.write_bytes(archive.read("BeatNet/test_data/808kick120bpm.mp3"))
    return [str(path)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("audio", nargs="*")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--model", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--convert", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from viml.engine.media import read_audio
    from viml.engine.music.rhythm.features import FeatureStream, log_filtered_spectrogram
    from viml.engine.music.rhythm.network import BeatNetModel, ChunkPlan
    from viml.export_onnx.beatnet import convert

    results: dict = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    if args.convert:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            convert(output=Path(folder), force=True)
            results["conversion_seconds"] = time.perf_counter() - started
        print(f"conversion (3 models, parity checks): {results['conversion_seconds']:.1f} s")

    with tempfile.TemporaryDirectory() as folder:
        models = convert(output=Path(folder))
        paths = args.audio or _default_audio()
        tracks = [read_audio(path, 22050) for path in paths]
        samples = int(args.seconds * 22050)
        timed = np.resize(tracks[0], samples)  # cut or repeated to the asked length
        results.update(audio=paths, seconds=args.seconds, model=args.model)

        def streamed() -> None:
            stream = FeatureStream()
            for start in range(0, samples, 22050):
                stream.push(timed[start : start + 22050])
            stream.finish()

        one_shot = _best(args.repeats, lambda: log_filtered_spectrogram(timed))
        stream_time = _best(args.repeats, streamed)
        results["features"] = {"one_shot_s": one_shot, "streamed_1s_blocks_s": stream_time}
        print(
            f"features for {args.seconds:.0f} s: one shot {one_shot:.3f} s, streamed {stream_time:.3f} s "
            f"({args.seconds / one_shot:.0f}x real time)"
        )

        features = log_filtered_spectrogram(timed)
        all_features = [log_filtered_spectrogram(track) for track in tracks]
        timings: dict = {}
        baseline = None
        for threads in (1, 2):
            model = BeatNetModel.load(models, args.model, device="cpu", threads=threads)
            whole = _best(args.repeats, lambda m=model: m.sequence(features))
            baseline = baseline or whole
            timings[f"whole_t{threads}"] = whole
            print(f"whole sequence, {threads} thread(s): {whole:.3f} s ({baseline / whole:.2f}x whole t1)")
        exact = BeatNetModel.load(models, args.model, device="cpu", threads=1)
        references = [exact.sequence(f)[0] for f in all_features]
        differences: dict = {}
        for chunk, warmup in PLANS:
            plan = ChunkPlan(chunk, warmup, 8)
            name = f"chunk{chunk}_warmup{warmup}"
            for threads in (1, 2):
                model = BeatNetModel.load(models, args.model, device="cpu", threads=threads, plan=plan)
                timings[f"{name}_t{threads}"] = _best(args.repeats, lambda m=model: m.run_features(features))
            differences[name] = max(
                float(np.abs(model.run_features(f) - r).max())
                for f, r in zip(all_features, references, strict=True)
            )
            print(
                f"chunked {chunk}/{warmup} frames: t1 {timings[name + '_t1']:.3f} s "
                f"({baseline / timings[name + '_t1']:.2f}x), t2 {timings[name + '_t2']:.3f} s "
                f"({baseline / timings[name + '_t2']:.2f}x); max |diff| vs whole {differences[name]:.1e} "
                f"over {len(tracks)} track(s), {sum(len(t) for t in tracks) / 22050 / 60:.1f} min"
            )
        results["activations_s"] = timings
        results["chunked_max_abs_difference"] = differences
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
