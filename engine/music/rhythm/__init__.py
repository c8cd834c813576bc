"""Rhythm of a track: beats and downbeats (BeatNet on onnxruntime + our tracker), sections, loudness."""
