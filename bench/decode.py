"""Decode speed: 6 fps frames of a 60 s 720p H.264 clip, and 60 s of audio to 16 kHz mono.

    python bench/decode.py [--seconds 60] [--json out.json]

Baselines measured in the same run: a plain threaded decode of every frame (the floor: no picking,
no resize), and one seek per sample over the first 20 s (the approach the engine avoids). The test
media (textured, moving, GOP 2 s, CRF 23) is generated once and cached under viml's cache folder.
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from viml.core.paths import cache_dir
from viml.engine.media import read_audio, video_segment_frames
from viml.engine.segments import frame_times, segment_bounds

WIDTH, HEIGHT, RATE = 1280, 720, 30


def make_clip(path: Path, seconds: float) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(0, 256, (HEIGHT // 16 + 2, WIDTH // 16 + 2, 3)), np.ones((16, 16, 1)))
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=RATE, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = 2 * RATE
        for index in range(int(seconds * RATE)):
            shift = index * 4
            frame = texture[shift % 16 : shift % 16 + HEIGHT, :WIDTH] * 0.6
            frame = frame + 100 * (np.sin((x + 8 * index) / 90.0) * np.cos(y / 70.0))[..., None]
            image = np.clip(frame + 60, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    partial.rename(path)
    return path


def make_audio(path: Path, seconds: float) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=44100, layout="stereo")
        for offset in range(0, int(seconds * 44100), 4096):
            block = (rng.uniform(-0.3, 0.3, (1, 2 * 4096))).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 44100, offset, Fraction(1, 44100)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decode_everything(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def seek_per_sample(path: Path, end: float) -> int:
    """One seek + decode up to the wanted time for every sample (what the engine does not do)."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for segment in segment_bounds(0.0, end):
            for wanted in frame_times(segment):
                container.seek(int(wanted / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time + 1 / RATE > wanted:
                        frame.to_ndarray(format="rgb24", width=398, height=224)
                        count += 1
                        break
    return count


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length (default 60)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    folder = cache_dir() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    clip = make_clip(folder / f"decode_{int(args.seconds)}s_720p.mp4", args.seconds)
    audio = make_audio(folder / f"decode_{int(args.seconds)}s.flac", args.seconds)
    window = min(20.0, args.seconds)

    engine_seconds, segments = timed(video_segment_frames, clip)
    floor_seconds, decoded = timed(decode_everything, clip)
    engine_window_seconds, _ = timed(video_segment_frames, clip, 0.0, window)
    seek_window_seconds, _ = timed(seek_per_sample, clip, window)
    audio_seconds, samples = timed(read_audio, audio, 16000)

    sampled = sum(len(s.frames) for s in segments)
    figures = {
        "clip seconds": args.seconds,
        "engine seconds for the clip (6 fps, short side 224)": round(engine_seconds, 3),
        "frames sampled": sampled,
        "frames decoded by the plain decode": decoded,
        "plain threaded decode seconds (floor)": round(floor_seconds, 3),
        "engine time / plain decode time": round(engine_seconds / floor_seconds, 3),
        "window seconds for the seek comparison": window,
        "engine seconds on the window": round(engine_window_seconds, 3),
        "seek per sample seconds on the window": round(seek_window_seconds, 3),
        "seek per sample time / engine time": round(seek_window_seconds / engine_window_seconds, 2),
        "audio seconds to 16 kHz mono (flac 44.1 kHz stereo)": round(audio_seconds, 3),
        "audio real-time factor": round(args.seconds / audio_seconds, 1),
        "audio samples": len(samples),
    }
    for key, value in figures.items():
        print(f"{key:>55}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
