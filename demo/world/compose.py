"""Compose one piece as General MIDI (pretty_midi) from its hidden attributes and a seed.

A piece is 4/4 bars over a looping four-chord progression in the piece's key and mode: a melody built
from a two-bar motif that repeats with variation (so it sounds like a tune, not noise), a harmony part
played the style's way (arpeggio, pad, strum, power chords, jazz comping), a bass line and drums.
Energy sets loudness, rhythmic density and how busy the drums are. Everything random comes from `rng`,
so the same seed gives the same notes.
"""

from __future__ import annotations

import math

import numpy as np
import pretty_midi
from viml.demo.world.attributes import PieceAttributes
from viml.demo.world.styles import (
    CLAP,
    CLOSED_HAT,
    CRASH,
    KICK,
    OPEN_HAT,
    PEDAL_HAT,
    RIDE,
    SIDE_STICK,
    SNARE,
    STYLES,
    TAMBOURINE,
    Style,
)

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Chord progressions as scale degrees (0 = tonic), one chord per bar.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 0), (0, 3, 0, 4), (5, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)),
}
# Melody rhythms (beats per note, summing to one 4-beat bar), from calm to busy.
RHYTHMS = (
    ((2, 2), (4,), (1, 1, 2), (3, 1)),
    ((1, 1, 1, 1), (1.5, 0.5, 1, 1), (2, 1, 1), (1, 0.5, 0.5, 2)),
    ((0.5,) * 8, (0.5, 0.5, 1, 0.5, 0.5, 1), (1, 0.5, 0.5, 1, 0.5, 0.5), (0.75, 0.75, 0.5, 1, 1)),
)
BEATS_PER_BAR = 4


class _Piece:
    """Note writer in beats: converts to seconds, humanises timing and clamps velocity."""

    def __init__(self, attributes: PieceAttributes, rng: np.random.Generator, total_beats: float) -> None:
        self.attributes = attributes
        self.rng = rng
        self.seconds_per_beat = 60.0 / attributes.tempo
        self.total_beats = total_beats
        self.base_velocity = 48 + 64 * attributes.energy

    def add(self, instrument: pretty_midi.Instrument, pitch: int, beat: float, beats: float, accent=0.0):
        if beat >= self.total_beats:
            return
        beats = min(beats, self.total_beats - beat)
        jitter = self.rng.normal(0.0, 0.006)
        start = max(0.0, beat * self.seconds_per_beat + jitter)
        end = start + max(0.05, beats * self.seconds_per_beat)
        velocity = self.base_velocity + accent + self.rng.normal(0.0, 5.0)
        velocity = int(np.clip(velocity, 1, 127))
        instrument.notes.append(pretty_midi.Note(velocity, int(np.clip(pitch, 0, 127)), start, end))


def compose(attributes: PieceAttributes, seconds: float, rng: np.random.Generator) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI score covering at least `seconds` (the render trims and fades it)."""
    style = STYLES[attributes.style]
    midi = pretty_midi.PrettyMIDI(initial_tempo=attributes.tempo)
    bars = math.ceil(seconds / (BEATS_PER_BAR * 60.0 / attributes.tempo)) + 1
    piece = _Piece(attributes, rng, bars * BEATS_PER_BAR)
    scale = SCALES[attributes.mode]
    progression = PROGRESSIONS[attributes.mode][int(rng.integers(len(PROGRESSIONS[attributes.mode])))]
    chords = [progression[bar % len(progression)] for bar in range(bars)]

    harmony = pretty_midi.Instrument(program=style.harmony, name="harmony")
    _harmony(piece, harmony, style, chords, scale)
    midi.instruments.append(harmony)
    if style.lead is not None or style.name in ("piano", "folk", "jazz"):
        # Solo piano, folk guitar and jazz piano carry the tune on the harmony instrument itself.
        lead = pretty_midi.Instrument(program=style.lead if style.lead is not None else style.harmony)
        lead.name = "lead"
        _melody(piece, lead, style, chords, scale)
        midi.instruments.append(lead)
    if style.bass is not None:
        bass = pretty_midi.Instrument(program=style.bass, name="bass")
        _bass(piece, bass, style, chords, scale)
        midi.instruments.append(bass)
    if style.drum_pattern != "none" and (style.drum_pattern != "light" or attributes.energy > 0.45):
        drums = pretty_midi.Instrument(program=style.drum_kit or 0, is_drum=True, name="drums")
        _drums(piece, drums, style, bars)
        midi.instruments.append(drums)
    return midi


def _pitch(attributes: PieceAttributes, scale: tuple[int, ...], degree: int, octave: int) -> int:
    """MIDI pitch of a scale degree (may exceed 0..6: wraps into neighbouring octaves)."""
    octave_shift, step = divmod(degree, len(scale))
    return 12 * (octave + 1 + octave_shift) + attributes.key + scale[step]


def _chord(chord: int, size: int = 3) -> list[int]:
    return [chord + 2 * i for i in range(size)]


def _melody(piece: _Piece, lead, style: Style, chords: list[int], scale) -> None:
    rng, attributes = piece.rng, piece.attributes
    level = int(np.clip(round(attributes.energy * 2 + rng.normal(0, 0.3)), 0, 2))
    motif_rhythm = [RHYTHMS[level][int(rng.integers(4))] for _ in range(2)]
    motif_steps = [[int(rng.choice([-2, -1, -1, 0, 1, 1, 2])) for _ in bar] for bar in motif_rhythm]
    for bar, chord in enumerate(chords[:-1]):
        rhythm, steps = motif_rhythm[bar % 2], motif_steps[bar % 2]
        if bar % 8 >= 6:  # every third and fourth phrase vary the motif
            steps = [step + int(rng.integers(-1, 2)) for step in steps]
        degree = int(rng.choice(_chord(chord)))  # phrases start on a chord tone
        beat = bar * BEATS_PER_BAR
        for duration, step in zip(rhythm, steps, strict=True):
            degree = int(np.clip(degree + step, -3, 10))
            if rng.random() > 0.08 or duration >= 2:  # occasional rests breathe
                accent = 12.0 if beat % BEATS_PER_BAR == 0 else 0.0
                piece.add(
                    lead, _pitch(attributes, scale, degree, style.lead_octave), beat, duration * 0.95, accent
                )
            beat += duration
    final = chords[-1]
    piece.add(lead, _pitch(attributes, scale, final, style.lead_octave), (len(chords) - 1) * BEATS_PER_BAR, 4)


def _harmony(piece: _Piece, inst, style: Style, chords: list[int], scale) -> None:
    attributes, energy = piece.attributes, piece.attributes.energy
    for bar, chord in enumerate(chords):
        start = bar * BEATS_PER_BAR
        tones = [_pitch(attributes, scale, d, 4) for d in _chord(chord)]
        root = _pitch(attributes, scale, chord, 3)
        if style.comping == "arpeggio":
            step = 0.5 if energy > 0.45 else 1.0
            pattern = [root - 12 if style.bass is None else root] + tones + [tones[0] + 12, tones[1]]
            piece.add(inst, pattern[0], start, 4, 6)  # left hand root holds the bar
            for i in range(int(BEATS_PER_BAR / step)):
                piece.add(inst, pattern[1 + i % (len(pattern) - 1)], start + i * step, step * 1.6, -14)
        elif style.comping == "pad":
            low = [root - 12] if style.bass is None else []
            for pitch in low + tones:
                piece.add(inst, pitch, start, 4.02, -10)
        elif style.comping == "strum":
            voicing = [root - 12, root - 5, root, tones[1], tones[2], root + 12]
            hits = (0, 2) if energy < 0.35 else (0, 1, 2, 3) if energy < 0.7 else (0, 1, 1.5, 2, 3, 3.5)
            for hit in hits:
                down = hit == int(hit)
                order = voicing if down else voicing[::-1]
                for i, pitch in enumerate(order):
                    piece.add(inst, pitch, start + hit + i * 0.02, 1.0, 0 if down else -12)
        elif style.comping == "power":
            power = [root - 12, root - 5, root]
            step = 0.5 if energy > 0.5 else 1.0
            # Ringing (legato) power chords: staccato ones made musicnn hear techno instead of guitar.
            for i in range(int(BEATS_PER_BAR / step)):
                for pitch in power:
                    piece.add(inst, pitch, start + i * step, step * 0.98, 8 if i == 0 else -4)
        elif style.comping == "offbeat":  # jazz comping: seventh chords on swung off-beats
            seventh = [_pitch(attributes, scale, d, 4) for d in _chord(chord, 4)]
            for hit in (1 + 2 / 3, 3):
                for pitch in seventh:
                    piece.add(inst, pitch, start + hit, 0.6, -16)
        else:  # block
            for pitch in tones:
                piece.add(inst, pitch, start, 2, -8)
                piece.add(inst, pitch, start + 2, 2, -12)


def _bass(piece: _Piece, inst, style: Style, chords: list[int], scale) -> None:
    attributes = piece.attributes
    octave = 3 if style.bass == 42 else 2  # cello sits an octave above a bass guitar
    for bar, chord in enumerate(chords):
        start = bar * BEATS_PER_BAR
        root = _pitch(attributes, scale, chord, octave)
        pattern = style.bass_pattern
        if pattern == "eighths":
            for i in range(8):
                piece.add(inst, root, start + i * 0.5, 0.45, 6 if i % 2 == 0 else 0)
        elif pattern == "offbeat":
            for i in range(4):
                piece.add(inst, root, start + i + 0.5, 0.4, 4)
        elif pattern == "walking":
            next_root = _pitch(attributes, scale, chords[(bar + 1) % len(chords)], octave)
            walk = [
                root,
                _pitch(attributes, scale, chord + 1, octave),
                _pitch(attributes, scale, chord + 2, octave),
            ]
            walk.append(next_root - 1 if next_root > walk[-1] else next_root + 1)  # chromatic approach
            for i, pitch in enumerate(walk):
                piece.add(inst, pitch, start + i, 0.9, 4)
        elif pattern == "root_fifth":
            piece.add(inst, root, start, 1.8, 4)
            piece.add(inst, root + 7, start + 2, 1.8, 0)
        else:  # root / drone: one long note per bar
            piece.add(inst, root, start, 4.0, -4)


def _drums(piece: _Piece, drums, style: Style, bars: int) -> None:
    energy = piece.attributes.energy
    for bar in range(bars):
        start = bar * BEATS_PER_BAR
        hits: list[tuple[int, float, float]] = []  # key, beat in bar, accent
        if style.drum_pattern == "rock":
            hits += [(KICK, 0, 12), (KICK, 2, 8), (SNARE, 1, 12), (SNARE, 3, 12)]
            if energy > 0.5:
                hits.append((KICK, 2.5, 4))
            step = 0.25 if energy > 0.8 else 0.5
            hits += [(CLOSED_HAT, i * step, -10) for i in range(int(BEATS_PER_BAR / step))]
            if bar % 4 == 0:
                hits.append((CRASH, 0, 6))
        elif style.drum_pattern == "four_on_floor":
            hits += [(KICK, beat, 14) for beat in range(4)] + [(CLAP, 1, 4), (CLAP, 3, 4)]
            hits += [(OPEN_HAT, beat + 0.5, -6) for beat in range(4)]
            if energy > 0.6:
                hits += [(CLOSED_HAT, i * 0.25, -18) for i in range(16) if i % 2 == 1]
        elif style.drum_pattern == "swing":
            hits += [(RIDE, beat, -6) for beat in (0, 1, 1 + 2 / 3, 2, 3, 3 + 2 / 3)]
            hits += [(PEDAL_HAT, 1, -12), (PEDAL_HAT, 3, -12), (KICK, 0, -16)]
            if energy > 0.5:
                hits += [(SNARE, 2 + 2 / 3, -24), (SNARE, 3 + 2 / 3, -20)]
        elif style.drum_pattern == "light":
            hits += [(TAMBOURINE, 1, -10), (TAMBOURINE, 3, -10), (SIDE_STICK, 1, -14), (KICK, 0, -10)]
        for key, beat, accent in hits:
            piece.add(drums, key, start + beat, 0.25, accent)
