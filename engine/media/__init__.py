"""Media decoding with PyAV: `probe`, `read_audio` / `iter_audio` (for the music model) and
`video_segment_frames` (for the frame encoder). Every unreadable input, and every file outside
`limits`, raises `viml.core.errors.MediaError` with a clear reason."""

from .audio import iter_audio, iter_audio_rates, read_audio
from .container import MediaInfo, probe
from .video import DEFAULT_SHORT_SIDE, SegmentFrames, iter_segment_frames, video_segment_frames

__all__ = [
    "DEFAULT_SHORT_SIDE",
    "MediaInfo",
    "SegmentFrames",
    "iter_audio",
    "iter_audio_rates",
    "iter_segment_frames",
    "probe",
    "read_audio",
    "video_segment_frames",
]
