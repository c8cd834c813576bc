"""Waveforms for display: built from the scan's own decode (no second decode), stored per content, read
back as stored; a catalog from before them gets them on the next scan without the music model."""

from __future__ import annotations

import os
import sqlite3
import sys

import numpy as np
import pytest
from hostile_media import write_wav
from viml.catalog import analysis
from viml.catalog.scan import scan
from viml.catalog.store import Catalog
from viml.demo.stats_analyzer import SAMPLE_RATE, StatsAnalyzer, decode_mono
from viml.engine.media import audio
from viml.engine.music.waveform import (
    POINTS_PER_SECOND,
    Waveform,
    WaveformBuilder,
    code_amplitudes,
    level_codes,
)

RATE = 44100


def loud_then_quiet(seconds: float, seed: int) -> np.ndarray:
    """A tone at -6 dBFS peak (a pitch per seed) for the first half, 30 dB quieter for the second."""
    n = int(seconds * RATE)
    signal = 0.5 * np.sin(2 * np.pi * (220 + 50 * seed) * np.arange(n) / RATE)
    signal[n // 2 :] *= 10 ** (-30 / 20)
    return np.stack([signal, signal]).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    for index, seconds in enumerate((12.0, 21.0)):
        write_wav(music / f"song{index}.wav", loud_then_quiet(seconds, index), RATE)
    return music


class CountingDecodes:
    """Counts decodes: every audio read (read_audio, iter_audio, iter_audio_rates) opens one _audio_blocks."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        real = audio._audio_blocks

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(audio, "_audio_blocks", counted)


def test_levels_are_db_codes_and_streaming_equals_one_shot():
    assert list(level_codes(np.array([0.0, 1e-4, 1e-3, 0.5, 1.0, 2.0]))) == [0, 0, 0, 229, 255, 255]
    assert code_amplitudes(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert code_amplitudes(level_codes(np.array([0.1])))[0] == pytest.approx(0.1, rel=0.03)
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.2, 22050 * 3 + 100).astype(np.float32)
    whole = WaveformBuilder(22050)
    whole.push(signal)
    pieces = WaveformBuilder(22050)
    for start in range(0, len(signal), 997):  # blocks that never line up with a point
        pieces.push(signal[start : start + 997])
    a, b = whole.finish(), pieces.finish()
    assert a.rate == POINTS_PER_SECOND and len(a) == 3 * 25 + 1  # the last 100 samples: one more point
    assert np.array_equal(a.peak, b.peak) and np.array_equal(a.rms, b.rms)


def test_binned_keeps_a_transient_and_the_quiet_half():
    peak = np.full(250, level_codes(np.array([0.01]))[0], np.uint8)  # 10 s at -40 dB
    peak[137] = 255  # one click at 0 dBFS
    waveform = Waveform(25.0, peak, peak.copy())
    tops, bodies = waveform.binned(20)  # 12.5 points a bin
    assert tops.argmax() == 137 // 12.5 and tops.max() == 1.0
    assert np.all(tops[np.arange(20) != 10] == pytest.approx(0.01, rel=0.05))
    assert bodies[10] < tops[10]  # the RMS of the bin, not its peak
    wide, _ = waveform.binned(1000)  # more bins than points: each bin shows the point under it
    assert wide.max() == 1.0 and wide[548] == 1.0
    past, _ = waveform.binned(10, 0.0, 20.0)  # past the end: nothing
    assert np.all(past[5:] == 0) and np.all(past[:5] > 0)


def test_scan_stores_the_waveform_of_its_own_decode(folder, tmp_path, monkeypatch):
    decodes = CountingDecodes(monkeypatch)
    with Catalog(tmp_path / "c.sqlite") as catalog:
        summary = scan(catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False)
        assert summary.analysed == 2 and decodes.count == 2  # one decode a file, waveform included
        tracks = {t.path.rsplit("/", 1)[1]: t for t in catalog.tracks()}
        stored = catalog.waveforms(t.hash for t in tracks.values())
        for name, seconds in (("song0.wav", 12.0), ("song1.wav", 21.0)):
            waveform = stored[tracks[name].hash]
            assert waveform.duration == pytest.approx(seconds, abs=0.05)
            peak, rms = waveform.heights()
            half = len(peak) // 2
            # The quiet half is 30 dB down (a ratio of ~32 in amplitude); peaks near -6 dBFS.
            assert np.median(peak[: half - 2]) == pytest.approx(0.5, abs=0.08)
            ratio = np.median(rms[: half - 2]) / np.median(rms[half + 2 :])
            assert 25 < ratio < 40
        again = scan(catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False)
        assert (again.unchanged, again.waveforms_measured, decodes.count) == (2, 0, 2)


class Counting(StatsAnalyzer):
    calls = 0

    def analyze_file(self, path):
        Counting.calls += 1
        return super().analyze_file(path)


def counting() -> Counting:
    return Counting()


def test_a_catalog_from_before_waveforms_gets_them_on_the_next_scan(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "counting", counting)
    spec = f"{__name__}:counting"
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        scan(catalog, folder, spec, jobs=1, progress=False)
        before = catalog.waveforms(t.hash for t in catalog.tracks())
    assert Counting.calls == 2 and len(before) == 2
    with sqlite3.connect(path) as connection:  # what a catalog scanned before waveforms holds
        connection.execute("DELETE FROM waveforms")
    decodes = CountingDecodes(monkeypatch)
    # Unchanged files are measured from their stored hash: not fingerprinted (hashed) again.
    monkeypatch.setattr(analysis, "worker_fingerprint", lambda path: pytest.fail(f"hashed {path}"))
    with Catalog(path) as catalog:
        summary = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (summary.analysed, summary.waveforms_measured, summary.unchanged) == (0, 2, 2)
        assert Counting.calls == 2 and decodes.count == 2  # decoded once each, no music model
        after = catalog.waveforms(t.hash for t in catalog.tracks())
        for content_hash, waveform in before.items():
            # Measured at the rhythm's rate instead of the analyzer's 16 kHz: the same shape, within a dB.
            assert abs(len(after[content_hash]) - len(waveform)) <= 1
            count = min(len(waveform), len(after[content_hash]))
            difference = after[content_hash].peak[:count].astype(int) - waveform.peak[:count]
            assert np.median(np.abs(difference)) <= 5  # codes are 0.24 dB apart
        third = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (third.unchanged, third.waveforms_measured, decodes.count) == (2, 0, 2)


def replace_keeping_stat(path, data: bytes) -> None:
    """New bytes of the same length with the old mtime: to a scan (size + mtime) the file is unchanged."""
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_failed_measurement_is_recorded_and_waits_until_retried(folder, tmp_path, monkeypatch, capsys):
    """A waveform that cannot be measured is recorded with why; later scans do not decode the unchanged
    file again each time (they did: every scan of a big library re-decoded its few bad files); --retry-failed
    does, and a success clears the record."""
    from viml.cli import main

    spec = "viml.demo.stats_analyzer:load"
    path, bad = tmp_path / "c.sqlite", folder / "song0.wav"
    with Catalog(path) as catalog:
        scan(catalog, folder, spec, jobs=1, progress=False)
    with sqlite3.connect(path) as connection:  # a catalog from before waveforms
        connection.execute("DELETE FROM waveforms")
    good = bad.read_bytes()
    replace_keeping_stat(bad, bytes(len(good)))  # zeroed (bit rot): nothing can decode it
    with Catalog(path) as catalog:
        first = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (first.unchanged, first.waveforms_measured, first.waveforms_failed) == (2, 1, 1)
        assert [(f["path"], f["what"]) for f in first.measure_failures] == [(str(bad), ["waveform"])]
        recorded = catalog.measure_failures(str(folder))
        assert [(r["path"], r["what"]) for r in recorded] == [(str(bad), "waveform")] and recorded[0][
            "message"
        ]
        decodes = CountingDecodes(monkeypatch)
        second = scan(catalog, folder, spec, jobs=1, progress=False)
        assert (second.waveforms_failed, second.measures_still_failing, decodes.count) == (0, 1, 0)
    assert main(["scan", str(folder), "--catalog", str(path), "--analyzer", spec, "-j", "1", "-q"]) == 0
    assert "not measured 1: their rhythm or waveform failed before" in capsys.readouterr().out
    assert decodes.count == 0
    replace_keeping_stat(bad, good)  # e.g. a codec installed since: only a retry can tell
    with Catalog(path) as catalog:
        retried = scan(catalog, folder, spec, jobs=1, progress=False, retry_failed=True)
        assert (retried.waveforms_measured, retried.waveforms_failed, retried.measures_still_failing) == (
            1,
            0,
            0,
        )
        assert decodes.count == 1 and catalog.measure_failures(str(folder)) == []
        assert len(catalog.waveforms(t.hash for t in catalog.tracks())) == 2


def test_a_failed_file_is_tried_again_only_when_asked(folder, tmp_path):
    path, bad = tmp_path / "c.sqlite", folder / "song1.wav"
    good = bad.read_bytes()
    replace_keeping_stat(bad, bytes(len(good)))
    with Catalog(path) as catalog:
        first = scan(catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False)
        assert first.analysed == 1 and len(first.failures) == 1
        replace_keeping_stat(bad, good)
        again = scan(catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False)
        assert (again.still_failing, again.analysed) == (1, 0)
        retried = scan(
            catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False, retry_failed=True
        )
        assert (retried.still_failing, retried.analysed, retried.failures) == (0, 1, [])
        assert len(catalog.tracks()) == 2 and catalog.errors() == []


def test_an_analyzer_that_builds_no_waveforms_is_not_asked_again(folder, tmp_path, monkeypatch):
    class Plain(StatsAnalyzer):
        waveforms = False

        def analyze_file(self, path):
            return self.analyze(decode_mono(path), SAMPLE_RATE)

    monkeypatch.setattr(sys.modules[__name__], "plain", lambda: Plain(), raising=False)
    with Catalog(tmp_path / "c.sqlite") as catalog:
        scan(catalog, folder, f"{__name__}:plain", jobs=1, progress=False)
        assert catalog.waveforms(t.hash for t in catalog.tracks()) == {}
        again = scan(catalog, folder, f"{__name__}:plain", jobs=1, progress=False)
        assert (again.unchanged, again.waveforms_measured) == (2, 0)


def test_an_old_catalog_upgrades_to_the_waveform_table(tmp_path):
    from viml.catalog import schema

    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path, isolation_level=None)
    waveform_version = next(i for i, steps in enumerate(schema.MIGRATIONS) if "waveforms" in str(steps[0]))
    for version, steps in enumerate(schema.MIGRATIONS[:waveform_version]):
        for step in steps:
            step(connection) if callable(step) else connection.execute(step)
        connection.execute(f"PRAGMA user_version = {version + 1}")
    connection.close()
    with Catalog(path) as catalog:
        assert catalog.waveforms(["abc"]) == {}
        assert catalog.tracks_without_waveform("/") == {}


# --- the product's music model: the waveform comes out of the decode the model and rhythm share -----


@pytest.fixture
def musicnn_home(tmp_path_factory, isolated_viml_home):
    from music_helpers import converted_models, install_models

    install_models(converted_models(tmp_path_factory), isolated_viml_home)
    return isolated_viml_home


def test_the_music_model_scan_and_the_backfill_decode_once_for_everything(
    folder, tmp_path, monkeypatch, musicnn_home, tmp_path_factory
):
    import shutil

    from viml.core.errors import WeightsUnavailableError
    from viml.engine.music.runtime import MusicModel

    try:
        from viml.export_onnx.beatnet import convert, find_beatnet

        beatnet = convert(wheel=find_beatnet(download=False).path, output=tmp_path_factory.mktemp("beatnet"))
    except WeightsUnavailableError:
        beatnet = None
    monkeypatch.setenv("VIML_RHYTHM", "0")
    decodes = CountingDecodes(monkeypatch)
    model_runs = []
    real = MusicModel.analyze_file
    monkeypatch.setattr(
        MusicModel, "analyze_file", lambda self, *a, **k: model_runs.append(1) or real(self, *a, **k)
    )
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        first = scan(catalog, folder, jobs=1, progress=False)
        assert (first.analysed, len(model_runs), decodes.count) == (2, 2, 2)
        stored = catalog.waveforms(t.hash for t in catalog.tracks())
        assert len(stored) == 2
        assert sorted(round(w.duration) for w in stored.values()) == [12, 21]
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM waveforms")
    if beatnet is not None:  # then one decode measures the missing rhythm and the waveform together
        shutil.copytree(beatnet, musicnn_home / "models" / "beatnet")
        monkeypatch.delenv("VIML_RHYTHM")
    with Catalog(path) as catalog:
        second = scan(catalog, folder, jobs=1, progress=False)
        assert (second.analysed, second.waveforms_measured, len(model_runs)) == (0, 2, 2)
        assert decodes.count == 4  # one more decode a file
        assert second.rhythm_measured == (2 if beatnet is not None else 0)
        assert len(catalog.waveforms(t.hash for t in catalog.tracks())) == 2
