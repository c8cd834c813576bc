"""Clip → per-segment frame embeddings, with decoding and encoding overlapped.

A decoder thread walks the clip segment by segment (`engine.media.video.iter_segment_frames`) and hands
each segment's frames over a small queue while the caller's thread runs the frame encoder on the previous
one: PyAV and onnxruntime both release the GIL, so on 2 cores decode time mostly hides behind encoding.
"""

from __future__ import annotations

import contextlib
import queue
import threading

import numpy as np
from viml.engine.media.video import iter_segment_frames
from viml.engine.runtime.frames import FrameEncoder

_DONE = object()


def encode_clip_segments(
    encoder: FrameEncoder, video: str, start: float = 0.0, end: float | None = None
) -> list[np.ndarray]:
    handoff: queue.Queue = queue.Queue(maxsize=2)  # bounded: at most ~2 segments of frames in memory
    stop = threading.Event()

    def decode() -> None:
        try:
            for segment in iter_segment_frames(video, start, end, short_side=encoder.image_size):
                if stop.is_set():
                    return
                handoff.put(segment.frames)
            handoff.put(_DONE)
        except BaseException as error:  # handed to the caller's thread, which raises it
            handoff.put(error)

    thread = threading.Thread(target=decode, name="viml-decode", daemon=True)
    thread.start()
    embeddings: list[np.ndarray] = []
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            embeddings.append(encoder.encode_frames(item))
    finally:
        stop.set()
        while thread.is_alive():  # unblock a decoder waiting on a full queue
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.1)
        thread.join()
    return embeddings
