"""The rhythm analysis' own parts: beat and bar tracking, loudness, sections, one decode at two rates,
the catalog's rhythm table, the measured-tempo filter and musical starts."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest
from viml.engine.music.rhythm.loudness import LoudnessStream, integrated_loudness
from viml.engine.music.rhythm.sections import section_starts
from viml.engine.music.rhythm.tracker import FPS, track_beats
from viml.engine.music.rhythm.types import Beats, Rhythm

RNG = np.random.default_rng(7)


def activations_for(
    beats: np.ndarray, meter: int, seconds: float, noise: float = 0.02, first_position: int = 1
):
    """Beat-network-like activations: a peak five frames wide at each beat, in the downbeat column on
    bar position 1; low noise elsewhere."""
    frames = int(seconds * FPS)
    act = np.abs(RNG.normal(0, noise, (frames, 2)))
    shape = [0.2, 0.5, 1.0, 0.5, 0.2]
    for n, time in enumerate(beats):
        centre = int(round(time * FPS))
        column = 1 if (n + first_position - 1) % meter == 0 else 0
        for d, w in zip(range(-2, 3), shape, strict=True):
            if 0 <= centre + d < frames:
                act[centre + d, column] += 0.8 * w
                act[centre + d, 1 - column] += 0.05 * w
    return np.clip(act, 0, 1)


@pytest.mark.parametrize(("bpm", "meter"), [(60, 4), (92, 3), (120, 4), (128, 4), (174, 4), (140, 3)])
def test_tracker_finds_beats_downbeats_and_tempo(bpm, meter):
    truth = np.arange(1.3, 100.0, 60.0 / bpm)
    beats = track_beats(activations_for(truth, meter, 101.0))
    assert mir_eval.beat.f_measure(truth, beats.times) > 0.97
    assert beats.tempo == pytest.approx(bpm, rel=0.01)
    assert beats.beats_per_bar == meter
    assert mir_eval.beat.f_measure(truth[::meter], beats.downbeats) > 0.95
    assert 0.5 < beats.tempo_confidence <= 1.0


def test_tracker_follows_a_pickup_and_a_tempo_change():
    # Two beats of pickup before the first bar, then 100 BPM speeding up to 110 halfway through.
    first = np.arange(2.0, 60.0, 0.6)
    second = np.arange(first[-1] + 60 / 110, 120.0, 60 / 110)
    truth = np.concatenate([first, second])
    act = activations_for(truth, 4, 121.0, first_position=3)  # beats 1 and 2 are bar positions 3 and 4
    beats = track_beats(act)
    assert mir_eval.beat.f_measure(truth, beats.times) > 0.95
    assert mir_eval.beat.f_measure(truth[2::4], beats.downbeats) > 0.95


def test_no_beats_in_silence_or_noise_only():
    assert len(track_beats(np.zeros((3000, 2))).times) == 0
    quiet = np.abs(RNG.normal(0, 0.005, (3000, 2)))
    assert len(track_beats(quiet).times) == 0
    with pytest.raises(ValueError, match="activations"):
        track_beats(np.zeros((10, 3)))


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_loudness_matches_pyloudnorm_streamed_in_odd_blocks(rate):
    pyloudnorm = pytest.importorskip("pyloudnorm")
    t = np.arange(int(rate * 23.7)) / rate
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 0.13 * t)) + 0.05 * RNG.normal(
        size=len(t)
    )
    signal[: rate * 4] *= 1e-5  # a near-silent intro the gates must drop
    signal = signal.astype(np.float32)
    reference = pyloudnorm.Meter(rate).integrated_loudness(signal.astype(np.float64))
    stream = LoudnessStream(rate)
    for first in range(0, len(signal), 7777):
        stream.push(signal[first : first + 7777])
    assert stream.integrated() == pytest.approx(reference, abs=0.05)
    assert integrated_loudness(signal, rate) == pytest.approx(stream.integrated(), abs=1e-9)


def test_loudness_curve_and_silence():
    rate = 22050
    t = np.arange(rate * 12) / rate
    sine = (np.sin(2 * np.pi * 1000 * t)).astype(np.float32)  # full-scale 1 kHz: -3.0 LUFS (BS.1770)
    sine[rate * 6 :] *= 0.1  # 20 dB quieter from 6 s
    stream = LoudnessStream(rate)
    stream.push(sine)
    curve = stream.curve()
    assert len(curve) == 12
    assert curve[2] == pytest.approx(-3.0, abs=0.15)
    assert curve[9] == pytest.approx(-23.0, abs=0.15)
    assert integrated_loudness(np.zeros(rate * 3, np.float32), rate) == float("-inf")


def test_an_empty_block_changes_nothing():
    """One decode hands several rates their blocks together, and a resampler still filling its delay gives
    an empty one (a real .m4a failed its scan so: "cannot reshape array of size 0")."""
    rate = 22050
    signal = (0.2 * np.sin(2 * np.pi * 330 * np.arange(rate * 5) / rate)).astype(np.float32)
    plain, gappy = LoudnessStream(rate), LoudnessStream(rate)
    plain.push(signal)
    gappy.push(np.zeros(0, np.float32))
    gappy.push(signal[:1000])
    gappy.push(np.zeros(0, np.float32))
    gappy.push(signal[1000:])
    assert gappy.integrated() == plain.integrated()
    assert np.array_equal(gappy.curve(), plain.curve())


def test_sections_found_where_the_sound_changes_and_moved_to_downbeats():
    times = np.arange(0.25, 180.0, 0.5)
    beats = Beats(times, (np.arange(len(times)) % 4) + 1, 120.0, 0.9, 4)
    bands = RNG.normal(0, 1, (180 * 50, 136)).astype(np.float32)
    bounds = [0.0, 40.3, 88.1, 130.2, 180.0]
    for n in range(4):
        bands[int(bounds[n] * 50) : int(bounds[n + 1] * 50)] += RNG.normal(0, 2, 136)
    starts = section_starts(beats, bands, 50.0, duration=180.0)
    downbeats = beats.downbeats
    assert starts[0] == 0.0
    assert len(starts) == 4
    for found, true in zip(starts[1:], bounds[1:4], strict=True):
        assert abs(found - true) <= 2.0  # within a bar
        assert np.min(np.abs(downbeats - found)) < 1e-9
    steady = section_starts(beats, RNG.normal(0, 1, (180 * 50, 136)), 50.0, duration=180.0)
    assert len(steady) <= 3  # noise alone makes few boundaries


def test_one_decode_gives_each_rate_as_its_own_read(tmp_path):
    from hostile_media import write_wav
    from viml.engine.media import iter_audio_rates, read_audio

    path = tmp_path / "tone.wav"
    t = np.arange(44100 * 5) / 44100
    write_wav(path, (0.4 * np.sin(2 * np.pi * 330 * t))[None, :].astype(np.float32), 44100)
    steps = list(iter_audio_rates(path, (16000, 22050)))
    for n, rate in enumerate((16000, 22050)):
        joined = np.concatenate([step[n] for step in steps])
        np.testing.assert_array_equal(joined, read_audio(path, rate))


def test_catalog_keeps_rhythm_and_filters_by_measured_tempo(tmp_path):
    from viml.catalog.store import Catalog
    from viml.search.filters import Filters, tempo_in_range

    catalog = Catalog(tmp_path / "catalog.db")
    with catalog.transaction() as c:  # two contents, no tracks needed for the rhythm table itself
        for name in ("a", "b"):
            c.execute("INSERT INTO contents VALUES (?, 'x', 60, 6, 4, 0)", (name,))
    times = np.arange(0.5, 60, 60 / 70)
    rhythm = Rhythm(Beats(times, (np.arange(len(times)) % 4) + 1, 70.0, 0.8, 4), np.array([0.0, 30.5]), -14.2,
                    np.full(60, -14.0, np.float32))  # fmt: skip
    catalog.write_rhythm("a", "test-rhythm", rhythm)
    back = catalog.rhythm("a")
    np.testing.assert_array_equal(back.beats.times, times)
    np.testing.assert_array_equal(back.beats.downbeats, times[::4])
    assert (back.beats.tempo, back.loudness, back.beats.beats_per_bar) == (70.0, -14.2, 4)
    assert catalog.rhythm("b") is None
    assert catalog.measured_tempos() == {"a": (70.0, 0.8)}
    assert catalog.rhythm_analyzers(["a", "b"]) == {"a": "test-rhythm"}
    # 70 BPM measured counts at 140 (double time) but not at 100; a file's tag counts only as written.
    assert tempo_in_range(70.0, 130, 150, octaves=True) and not tempo_in_range(70.0, 90, 110, octaves=True)
    assert not tempo_in_range(70.0, 130, 150, octaves=False)
    assert Filters(min_bpm=130, max_bpm=150)


def test_musical_start_is_a_downbeat_near_the_best_window_and_prefers_a_section():
    from viml.search.offsets import fine_scores, place

    # Six 10 s segments; the query matches segment 3 best; the downbeats every 2 s from 0.5 s.
    dim = 8
    segments = np.eye(dim, dtype=np.float32)[:6]
    starts = np.arange(6) * 10.0
    ends = starts + 10.0
    query = segments[3:4]
    grid = fine_scores(segments, starts, ends, query, starts, 10.0)
    np.testing.assert_allclose(grid, (np.arange(6) == 3).astype(float), atol=1e-6)  # the grid as before
    downbeats = np.arange(0.5, 60.0, 2.0)
    times = np.sort(np.concatenate([downbeats, downbeats + 1.0]))
    beats = Beats(times, np.where(np.isin(times, downbeats), 1, 2), 60.0, 0.9, 2)
    placed = place(segments, starts, ends, query, 10.0, Rhythm(beats, np.array([0.0]), -14.0), 60.0)
    assert placed.on_downbeat and placed.start == pytest.approx(30.5)
    assert placed.bar == 16
    # A section starting at 28.5 s (one bar earlier) is within the tolerance? No: its score is 0.8.
    with_section = Rhythm(beats, np.array([0.0, 28.5]), -14.0)
    assert place(segments, starts, ends, query, 10.0, with_section, 60.0).start == pytest.approx(30.5)
    near = place(segments, starts, ends, query * 1.0, 10.0, Rhythm(beats, np.array([0.0, 30.5]), -14.0), 60.0)
    assert near.section_start
    # Without rhythm: a one-second grid, no bar.
    plain = place(segments, starts, ends, query, 10.0, None, 60.0)
    assert plain.start == pytest.approx(30.0) and plain.bar is None and not plain.on_downbeat
