"""Run-time speed: onnxruntime vs torch eager per encoder, and the whole "30 s clip → query" path.

One command:  python bench/runtime.py [--clip ViT-B-32:random] [--json PATH]
Builds a bundle in a temporary folder from CLIP weights (default: ViT-B-32 architecture with random
weights, the size that matters for speed; pass e.g. ViT-B-32:openai where weights are available),
then measures in the same run on the same inputs:
- frame encoder: torch eager vs onnxruntime float vs onnxruntime int8, batch 1 and batch 16;
  cosine similarity of int8 vs float embeddings on decoded video frames;
- CLIP text encoder: torch eager (open_clip tokenizer) vs onnxruntime (torch-free tokenizer);
- a generated 30 s 640x360 H.264 clip → query rows: decode alone, decode then encode, decode and encode
  overlapped (the run time's path), with near-duplicate frame reuse and its measured error;
- a second query on the same clip with a new prompt (clip embeddings cached).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(function, repeats: int) -> float:
    """Best-of-`repeats` seconds (after one warm-up call): the least disturbed by other processes."""
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def write_clip(path: Path, seconds: float = 30.0, fps: int = 24, size: tuple[int, int] = (640, 360)) -> Path:
    """Shots of moving coloured discs over gradients, cut every 5 s, with a little sensor noise."""
    import av

    width, height = size
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(int(seconds * fps)):
            shot = index // (5 * fps)
            shot_rng = np.random.default_rng(shot)
            base = shot_rng.uniform(0, 255, 3).astype(np.float32)
            image = np.empty((height, width, 3), np.float32)
            image[:] = base * (0.5 + 0.5 * xs[..., None] / width)
            t = index / fps
            for disc in range(3):
                cx = (shot_rng.uniform(0, width) + 40 * t * (disc + 1)) % width
                cy = shot_rng.uniform(0, height)
                inside = (xs - cx) ** 2 + (ys - cy) ** 2 < (30 + 10 * disc) ** 2
                image[inside] = shot_rng.uniform(0, 255, 3)
            image += rng.normal(0, 2, image.shape)
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="ViT-B-32:random", help="CLIP weights (NAME:TAG or NAME:/path)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime/torch threads (default: all cores)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="viml-bench-"))
    os.environ["VIML_HOME"] = str(work / "home")  # caches and bundles stay out of the user's folders
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.basicConfig(level=logging.WARNING)
    import torch
    from viml.engine.preprocess import preprocess_frames
    from viml.engine.runtime import open_bundle
    from viml.engine.runtime.pipeline import encode_clip_segments
    from viml.export_onnx.build import build_bundle
    from viml.export_onnx.clip import load_clip
    from viml.search.query import encode_query

    if args.threads:
        torch.set_num_threads(args.threads)
    figures: dict[str, object] = {
        "clip_weights": args.clip,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    start = time.perf_counter()
    folder = build_bundle("bench", clip=args.clip, include_music=False, output_dir=work)
    figures["bundle_build_seconds"] = round(time.perf_counter() - start, 1)
    clip = load_clip(args.clip)  # same seed as the export: identical weights
    size = clip.preprocessing.image_size
    mean, std = clip.preprocessing.mean, clip.preprocessing.std

    video = write_clip(work / "clip.mp4")
    from viml.engine.media.video import video_segment_frames

    start = time.perf_counter()
    segments = video_segment_frames(video, short_side=size)
    decode_seconds = time.perf_counter() - start
    frames = np.concatenate([s.frames for s in segments])
    pixels = preprocess_frames(frames, size, mean, std)
    figures["clip_frames"] = len(frames)

    # -- frame encoder, per batch size ---------------------------------------------------------------
    float_bundle = open_bundle(
        folder, shared=False, provider="cpu", precision="float", threads=args.threads, reuse_threshold=0.0
    )
    int8_bundle = open_bundle(
        folder, shared=False, provider="cpu", precision="int8", threads=args.threads, reuse_threshold=0.0
    )
    frame_rows = {}
    for batch in (1, 16):
        x = pixels[:batch]
        torch_s = timed(lambda x=x: clip.encode_images(x, batch_size=len(x)), args.repeats)
        float_s = timed(lambda x=x: float_bundle.frame_encoder.encode_pixels(x), args.repeats)
        int8_s = timed(lambda x=x: int8_bundle.frame_encoder.encode_pixels(x), args.repeats)
        frame_rows[f"batch {batch}"] = {
            "torch eager ms per frame": 1000 * torch_s / batch,
            "onnxruntime float ms per frame": 1000 * float_s / batch,
            "onnxruntime int8 ms per frame": 1000 * int8_s / batch,
            "onnxruntime float speed-up vs torch": torch_s / float_s,
            "onnxruntime int8 speed-up vs torch": torch_s / int8_s,
            "int8 frames per second": batch / int8_s,
        }
    figures["frame encoder"] = frame_rows
    reference = clip.encode_images(pixels)
    int8_embeddings = int8_bundle.frame_encoder.encode_pixels(pixels)
    float_embeddings = float_bundle.frame_encoder.encode_pixels(pixels)
    cosine = np.sum(int8_embeddings * reference, axis=1)
    figures["int8 vs float cosine on clip frames"] = {
        "min": float(cosine.min()),
        "mean": float(cosine.mean()),
    }
    figures["onnx float vs torch max abs diff"] = float(np.abs(float_embeddings - reference).max())

    # -- text encoder ----------------------------------------------------------------------------------
    prompt = ["an energetic rock song with distorted guitars for a car chase"]
    torch_text = timed(lambda: clip.encode_texts(prompt), args.repeats)
    onnx_text = timed(lambda: float_bundle.prompt_encoder.encode_texts(prompt), args.repeats)
    figures["clip text encoder batch 1"] = {
        "torch eager ms": 1000 * torch_text,
        "onnxruntime ms (torch-free tokenizer)": 1000 * onnx_text,
        "speed-up": torch_text / onnx_text,
    }

    # -- the 30 s clip → query path --------------------------------------------------------------------
    path_figures: dict[str, float] = {"decode only s": decode_seconds}
    start = time.perf_counter()
    for segment in video_segment_frames(video, short_side=size):
        int8_bundle.frame_encoder.encode_frames(segment.frames)
    path_figures["decode then encode (int8, sequential) s"] = time.perf_counter() - start
    reuse_bundle = open_bundle(
        folder, provider="cpu", threads=args.threads, shared=False
    )  # defaults: int8 + reuse
    start = time.perf_counter()
    overlapped = encode_clip_segments(reuse_bundle.frame_encoder, str(video))
    path_figures["decode and encode overlapped (int8 + reuse) s"] = time.perf_counter() - start
    exact = encode_clip_segments(float_bundle.frame_encoder, str(video))
    reused_frames = reuse_bundle.frame_encoder.total_reused
    frame_cos = np.sum(np.concatenate(overlapped) * np.concatenate(exact), axis=1)
    seg = lambda rows: np.stack([r.mean(0) / np.linalg.norm(r.mean(0)) for r in rows])  # noqa: E731
    segment_cos = np.sum(seg(overlapped) * seg(exact), axis=1)
    path_figures["frames reusing a neighbour's embedding"] = int(reused_frames)
    path_figures["int8+reuse vs float frame cosine min"] = float(frame_cos.min())
    path_figures["int8+reuse vs float segment cosine min"] = float(segment_cos.min())

    start = time.perf_counter()
    encode_query(reuse_bundle, str(video), 0.0, None, "tense chase music", 0.5)
    path_figures["first query (clip + prompt, cold) s"] = time.perf_counter() - start
    second = timed(
        lambda: encode_query(reuse_bundle, str(video), 0.0, None, f"calm piano {time.time()}", 0.5),
        args.repeats,
    )
    path_figures["second query, new prompt, same clip ms"] = 1000 * second
    fresh = open_bundle(folder, provider="cpu", threads=args.threads, shared=False)
    start = time.perf_counter()
    encode_query(fresh, str(video), 0.0, None, "sad strings", 0.5)
    path_figures["new process-like query from disk cache ms (incl. session load)"] = 1000 * (
        time.perf_counter() - start
    )
    figures["30 s clip to query"] = path_figures

    print(f"clip weights {args.clip}; {figures['cpu_cores']} cores; {len(frames)} frames at 6 fps")
    for name, rows in frame_rows.items():
        print(
            f"frame encoder {name}: torch {rows['torch eager ms per frame']:.1f} ms/frame, "
            f"onnx float {rows['onnxruntime float ms per frame']:.1f} ({rows['onnxruntime float speed-up vs torch']:.2f}x), "
            f"onnx int8 {rows['onnxruntime int8 ms per frame']:.1f} ({rows['onnxruntime int8 speed-up vs torch']:.2f}x)"
        )
    print(f"int8 vs float cosine on clip frames: min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    t = figures["clip text encoder batch 1"]
    print(
        f"text encoder: torch {t['torch eager ms']:.1f} ms, onnx {t['onnxruntime ms (torch-free tokenizer)']:.1f} ms ({t['speed-up']:.2f}x)"
    )
    for key, value in path_figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
