"""Deterministic rendered music for musicnn parity checks (reference values, tests, benchmark).

Four short pieces written note by note with pretty_midi and rendered with the General MIDI soundfont
pretty_midi ships (via `demo.world.render.render_midi`). Real instruments, not noise, so the taggers
answer with meaningful tags (piano -> piano/classical, strings -> strings/violin, ...), and the same
samples come out on every run, so stored reference outputs of the original TF model stay comparable.
Needs the `train` extra (pretty_midi, tinysoundfont); the run time never imports this module.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
SECONDS = 12.0
PIECES = ("piano", "strings", "rock", "techno")
# C major / A minor progressions as MIDI root notes.
_PROGRESSION = (60, 57, 53, 55)


def _note(instrument, pitch: int, start: float, end: float, velocity: int = 90) -> None:
    import pretty_midi

    instrument.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))


def _drums(midi, beat: float, seconds: float) -> None:
    import pretty_midi

    kit = pretty_midi.Instrument(program=0, is_drum=True)
    for i in range(int(seconds / beat)):
        t = i * beat
        _note(kit, 36 if i % 2 == 0 else 38, t, t + 0.1, 110)  # kick / snare
        _note(kit, 42, t, t + 0.05, 80)  # closed hi-hat
        _note(kit, 42, t + beat / 2, t + beat / 2 + 0.05, 70)
    midi.instruments.append(kit)


def piece_midi(name: str, seconds: float = SECONDS):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    if name == "piano":
        piano = pretty_midi.Instrument(program=0)
        step = 0.3
        for i in range(int(seconds / step)):
            root = _PROGRESSION[int(i * step / 2.4) % 4]
            _note(piano, root + (0, 4, 7, 12, 7, 4)[i % 6], i * step, i * step + 0.6, 70)
        midi.instruments.append(piano)
    elif name == "strings":
        strings = pretty_midi.Instrument(program=48)
        for i in range(int(seconds / 3.0)):
            for interval in (0, 4, 7, 12):
                _note(strings, _PROGRESSION[i % 4] - 12 + interval, i * 3.0, i * 3.0 + 3.0, 80)
        midi.instruments.append(strings)
    elif name == "rock":
        beat = 60 / 140
        guitar = pretty_midi.Instrument(program=30)
        for i in range(int(seconds / (beat / 2))):
            root = (40, 40, 43, 45)[int(i * beat / 2 / (4 * beat)) % 4]
            t = i * beat / 2
            for interval in (0, 7, 12):
                _note(guitar, root + interval, t, t + beat / 2, 110)
        midi.instruments.append(guitar)
        _drums(midi, beat, seconds)
    elif name == "techno":
        beat = 60 / 128
        lead = pretty_midi.Instrument(program=81)
        for i in range(int(seconds / (beat / 2))):
            t = i * beat / 2
            _note(lead, (57, 60, 64, 69, 64, 60, 57, 52)[i % 8], t, t + beat / 2 * 0.9, 100)
        midi.instruments.append(lead)
        _drums(midi, beat, seconds)
    else:
        raise ValueError(f"unknown piece {name!r}; choose from {PIECES}")
    return midi


def render_piece(name: str, seconds: float = SECONDS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 audio of one reference piece, peak-normalised to 0.9."""
    from viml.demo.world.render import render_midi

    audio = render_midi(piece_midi(name, seconds), seconds, sample_rate).mean(axis=1)
    peak = float(np.abs(audio).max())
    return (audio * (0.9 / peak)).astype(np.float32) if peak > 0 else audio.astype(np.float32)
