"""The beat benchmark's ground truth (bench/beat_truth.py) on small MIDI files and song folders written here:
tempo changes, time signatures, the grid past the chart's end, song.ini delay and stem mixing, the demo world.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile
from viml.engine.media import read_audio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import beat_truth  # noqa: E402
from beat_truth import (  # noqa: E402
    TruthError,
    grid_offset,
    load_demo_world,
    load_frets_on_fire,
    load_frets_on_fire_song,
    midi_beat_grid,
    song_delay,
)

TICKS = 480
RATE = 22050


def write_midi(path: Path, tempos: list[tuple[int, float]], signatures=(), end_beat: int = 16) -> Path:
    """Type-1 MIDI: a tempo/meter track (tempos and signatures as (beat, value)) and a note track."""
    meta = mido.MidiTrack()
    events = [
        (beat * TICKS, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for beat, bpm in tempos
    ]
    events += [
        (beat * TICKS, mido.MetaMessage("time_signature", numerator=num, denominator=den))
        for beat, (num, den) in signatures
    ]
    now = 0
    for tick, message in sorted(events, key=lambda event: event[0]):
        meta.append(message.copy(time=tick - now))
        now = tick
    notes = mido.MidiTrack()
    notes.append(mido.Message("note_on", note=96, velocity=100, time=0))
    notes.append(mido.Message("note_off", note=96, velocity=0, time=end_beat * TICKS))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    midi.tracks += [meta, notes]
    midi.save(path)
    return path


def test_tempo_change_and_the_grid_past_the_chart(tmp_path) -> None:
    # 120 BPM for 8 beats (4 s), then 90 BPM; the chart ends at beat 16, the audio at 15 s.
    path = write_midi(tmp_path / "notes.mid", [(0, 120.0), (8, 90.0)])
    beats, downbeats, per_bar = midi_beat_grid(pretty_midi.PrettyMIDI(str(path)), end=15.0)
    expected = np.concatenate([np.arange(8) * 0.5, 4.0 + np.arange(17) * (60 / 90)])
    np.testing.assert_allclose(beats, expected, atol=1e-3)
    assert beats[-1] < 15.0 <= beats[-1] + 60 / 90
    # No time signature: 4/4 from the first tick, also in the part past the chart's last event.
    assert per_bar == 4
    np.testing.assert_allclose(downbeats, expected[::4], atol=1e-3)
    assert beat_truth.grid_tempo(beats) == pytest.approx(90.0, rel=1e-3)  # the tempo held longest


def test_three_four_after_four_four(tmp_path) -> None:
    # Two bars of 4/4 at 100 BPM, then 3/4: downbeats on beats 0, 4, 8, 11, 14, ... to the end.
    path = write_midi(tmp_path / "notes.mid", [(0, 100.0)], [(0, (4, 4)), (8, (3, 4))], end_beat=14)
    beats, downbeats, per_bar = midi_beat_grid(pretty_midi.PrettyMIDI(str(path)), end=20 * 0.6 + 0.01)
    assert per_bar == 3
    np.testing.assert_allclose(beats, np.arange(21) * 0.6, atol=1e-3)
    np.testing.assert_allclose(downbeats, np.array([0, 4, 8, 11, 14, 17, 20]) * 0.6, atol=1e-3)


def test_compound_meter_counts_dotted_beats(tmp_path) -> None:
    path = write_midi(tmp_path / "notes.mid", [(0, 120.0)], [(0, (6, 8))], end_beat=6)
    beats, downbeats, per_bar = midi_beat_grid(pretty_midi.PrettyMIDI(str(path)), end=3.0)
    assert per_bar == 2  # 6/8: two dotted-quarter beats a bar
    np.testing.assert_allclose(beats, np.arange(4) * 0.75, atol=1e-3)
    np.testing.assert_allclose(downbeats, [0.0, 1.5], atol=1e-3)


def _clicks(times: np.ndarray, seconds: float) -> np.ndarray:
    audio = np.zeros(int(seconds * RATE), np.float32)
    burst = np.random.default_rng(0).normal(0, 0.5, 400) * np.exp(-np.arange(400) / 60)
    for time in times:
        start = int(round(time * RATE))
        audio[start : start + 400] += burst[: len(audio) - start].astype(np.float32)
    return audio


def write_song(
    folder: Path, delay_ms: str | None, seconds: float = 12.0, with_guitar: bool = True
) -> np.ndarray:
    """A FoF song folder: 120 BPM 4/4 chart; song.ogg clicks where the chart's beats sound given the
    delay (FoF: audio time = chart time + delay); guitar.ogg a steady tone. Returns the chart's beats."""
    folder.mkdir(parents=True)
    write_midi(folder / "notes.mid", [(0, 120.0)], [(0, (4, 4))], end_beat=20)
    chart = np.arange(0, seconds + 1, 0.5)  # past the end: a negative delay brings a later beat in
    delay = float(delay_ms or 0) / 1000
    heard = chart + delay
    song = _clicks(heard[(heard >= 0) & (heard < seconds - 0.1)], seconds)
    soundfile.write(folder / "song.ogg", np.stack([song, song], axis=1), RATE, format="OGG", subtype="VORBIS")
    if with_guitar:
        tone = 0.05 * np.sin(2 * np.pi * 1000 * np.arange(len(song)) / RATE).astype(np.float32)
        soundfile.write(folder / "guitar.ogg", tone, RATE, format="OGG", subtype="VORBIS")
    ini = "[song]\nname = Test\nartist = Someone\n" + (
        f"delay = {delay_ms}\n" if delay_ms is not None else ""
    )
    (folder / "song.ini").write_text(ini)
    return chart


@pytest.mark.parametrize("delay_ms", ["250", "-100"])
def test_delay_shifts_the_chart_onto_the_audio(tmp_path, delay_ms) -> None:
    chart = write_song(tmp_path / "pack" / "song", delay_ms)
    song = load_frets_on_fire_song(tmp_path / "pack" / "song", tmp_path / "mixes")
    delay = float(delay_ms) / 1000
    assert song.delay == pytest.approx(delay)
    expected = chart + delay
    expected = expected[(expected >= 0) & (expected < song.duration)]
    np.testing.assert_allclose(song.beats, expected[: len(song.beats)], atol=1e-6)
    assert len(expected) - len(song.beats) <= 1  # at most the last beat, in the silent tail
    np.testing.assert_allclose(song.downbeats, song.beats[(np.round((song.beats - delay) / 0.5) % 4) == 0])
    assert song.tempo == pytest.approx(120.0)
    # The sign, checked on the audio: the shifted grid sits on the clicks (within the onset flux's
    # lag of 0..25 ms), the chart's own grid is off by the delay.
    samples = read_audio(song.audio, RATE)
    shift, z = grid_offset(samples, RATE, song.beats, max_shift=0.05)
    assert 0.0 <= shift <= 0.025 and z > 2.0
    _, unshifted_z = grid_offset(samples, RATE, chart[chart < song.duration], max_shift=0.05)
    assert unshifted_z < z / 3


def test_stems_are_mixed_and_copies_skipped(tmp_path) -> None:
    write_song(tmp_path / "pack" / "a", None)
    write_song(tmp_path / "pack" / "b", None, with_guitar=False)
    shutil.copy(
        tmp_path / "pack" / "b" / "song.ogg", tmp_path / "pack" / "b" / "guitar.ogg"
    )  # a copy: FoF plays one
    songs = load_frets_on_fire(tmp_path / "mixes", root=tmp_path)
    assert [song.name for song in songs] == ["pack/a", "pack/b"]
    assert songs[0].delay == 0.0
    mixed = read_audio(songs[0].audio, RATE)
    spectrum = np.abs(np.fft.rfft(mixed[: RATE * 4]))
    tone_bin = 1000 * 4  # 1 kHz over 4 s
    assert spectrum[tone_bin] > 20 * np.median(spectrum)  # the guitar stem is in the mix
    assert grid_offset(mixed, RATE, songs[0].beats, max_shift=0.05)[1] > 1.0  # and so are the clicks
    assert songs[1].audio == tmp_path / "pack" / "b" / "song.ogg"  # a single stem is used as it is
    again = load_frets_on_fire(tmp_path / "mixes", root=tmp_path)  # cached mix reused
    assert again[0].audio == songs[0].audio


def test_bad_song_folders_say_what_is_wrong(tmp_path) -> None:
    (tmp_path / "song.ini").write_text("[song]\ndelay = soon\n")
    with pytest.raises(TruthError, match="not a number"):
        song_delay(tmp_path / "song.ini")
    (tmp_path / "song.ini").write_text("[song]\ndelay =\n")
    assert song_delay(tmp_path / "song.ini") == 0.0
    with pytest.raises(TruthError, match="no Frets on Fire songs"):
        load_frets_on_fire(tmp_path / "mixes", root=tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.mid").write_bytes(b"MThd")
    with pytest.raises(TruthError, match="no audio"):
        load_frets_on_fire_song(tmp_path / "empty", tmp_path / "mixes")


def test_demo_world_truth_is_the_midi_it_was_rendered_from(tmp_path) -> None:
    from viml.demo.world.generate import generate_world
    from viml.demo.world.render import render_midi

    world = generate_world(tmp_path / "world", pieces=2, seed=4, seconds=(6.0, 8.0), workers=1)
    songs = load_demo_world(tmp_path / "world")
    assert len(songs) == 2
    for piece, song in zip(world.pieces, songs, strict=True):
        period = 60 / piece.attributes.tempo
        np.testing.assert_allclose(
            song.beats, np.arange(0, piece.seconds, period)[: len(song.beats)], atol=1e-6
        )
        assert piece.seconds - period <= song.beats[-1] < piece.seconds
        np.testing.assert_allclose(song.downbeats, song.beats[::4])
        assert song.tempo == pytest.approx(piece.attributes.tempo, rel=1e-6) and song.beats_per_bar == 4
    # The recomposed MIDI is the one the file holds: render it and compare with the decoded WAV.
    piece = world.pieces[0]
    assert piece.music.endswith(".wav")
    decoded = read_audio(world.music_path(piece), world.sample_rate)
    rendered = render_midi(beat_truth.demo_piece_midi(piece), piece.seconds, world.sample_rate).mean(axis=1)
    correlation = np.corrcoef(decoded, rendered[: len(decoded)])[0, 1]
    assert correlation > 0.99
