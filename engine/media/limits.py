"""What ViML agrees to decode and analyse, in one place (docs/sections/media.md, "Limits").

A file outside these limits is refused with a `MediaError` naming the limit, before the work starts,
so a hostile or corrupt header (a 20 KB WAV declaring 1 Hz, a 10-hour silence) costs a failed file
rather than minutes of CPU and gigabytes of memory. The segment limits live with the segment rules in
`engine.segments` and are repeated here so this module lists every limit.
"""

from __future__ import annotations

from viml.engine.segments import MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS

# Longest span of audio read or analysed (4 hours): long DJ mixes and concerts fit; a header claiming
# more, or a stream that decodes past it, is refused.
MAX_AUDIO_SECONDS = 4 * 3600.0
# Lowest source sample rate accepted: below telephone quality (8 kHz) there is no music to tag, and a
# 1 Hz header would otherwise be upsampled 16000-fold.
MIN_SAMPLE_RATE = 4000
# Most audio channels accepted: FFmpeg's resampler (which downmixes) handles up to 64.
MAX_CHANNELS = 64

__all__ = [
    "MAX_AUDIO_SECONDS",
    "MAX_CHANNELS",
    "MAX_SEGMENT_SECONDS",
    "MIN_SAMPLE_RATE",
    "MIN_SEGMENT_SECONDS",
]
