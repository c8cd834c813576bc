"""The rhythm analysis inside a real scan: musicnn + BeatNet (converted from their wheels), one decode,
the catalog's rhythm rows, a rhythm-only pass for a catalog scanned before, measured tempo in the BPM
filter and suggestions that start on downbeats."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hostile_media import write_wav
from music_helpers import converted_models, install_models

RATE = 44100


def drum_track(bpm: float, seconds: float, seed: int) -> np.ndarray:
    """Kick on beat 1 and 3, snare on 2 and 4, eighth-note hats, a bass note per bar: [2, n] float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    beat = 60.0 / bpm
    t = np.arange(int(0.25 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = rng.normal(0, 1, len(t)) * np.exp(-t * 25) * 0.6
    hat = rng.normal(0, 1, len(t)) * np.exp(-t * 90) * 0.2
    pitch = 55.0 * 2 ** (rng.integers(0, 12) / 12)
    for k in range(int(seconds / beat * 2)):
        at = int(k * beat / 2 * RATE)
        parts = [hat]
        if k % 2 == 0:
            parts.append(kick if (k // 2) % 2 == 0 else snare)
        if k % 8 == 0:  # the bar's first beat: a bass note and a louder kick
            bar = np.arange(int(beat * 4 * RATE)) / RATE
            bass = 0.3 * np.sin(2 * np.pi * pitch * bar) * np.exp(-bar * 1.5)
            stop = min(n, at + len(bass))
            out[at:stop] += bass[: stop - at]
            parts.append(kick * 0.6)
        for part in parts:
            stop = min(n, at + len(part))
            out[at:stop] += part[: stop - at]
    out = 0.5 * out / np.abs(out).max()
    return np.stack([out, out]).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.beatnet import convert, find_beatnet

    musicnn = converted_models(tmp_path_factory)
    try:
        source = find_beatnet(download=False)
    except WeightsUnavailableError:
        pytest.skip("the BeatNet 1.1.3 wheel is not available offline on this machine")
    return musicnn, convert(wheel=source.path, output=tmp_path_factory.mktemp("beatnet"))


@pytest.fixture
def library(tmp_path, models, isolated_viml_home) -> Path:
    musicnn, beatnet = models
    install_models(musicnn, isolated_viml_home)
    shutil.copytree(beatnet, isolated_viml_home / "models" / "beatnet")
    folder = tmp_path / "music"
    folder.mkdir()
    for n, bpm in enumerate((96.0, 124.0)):
        write_wav(folder / f"groove_{int(bpm)}.wav", drum_track(bpm, 45.0, seed=n), RATE)
    return folder


def test_scan_measures_tempo_beats_sections_and_loudness(library, tmp_path):
    import mir_eval
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog

    catalog = Catalog(tmp_path / "catalog.db")
    summary = scan(catalog, str(library), jobs=1)
    assert summary.analysed == 2 and summary.rhythm and summary.rhythm.startswith("beatnet:")
    for track in catalog.tracks():
        bpm = float(Path(track.path).stem.split("_")[1])
        rhythm = catalog.rhythm(track.hash)
        assert rhythm is not None
        assert min(abs(rhythm.beats.tempo / bpm - f) for f in (0.5, 1.0, 2.0)) < 0.04
        truth = np.arange(0.0, 45.0, 60.0 / bpm)
        assert (
            mir_eval.beat.f_measure(
                mir_eval.beat.trim_beats(truth), mir_eval.beat.trim_beats(rhythm.beats.times)
            )
            > 0.8
        )
        assert rhythm.sections[0] == 0.0
        assert -30 < rhythm.loudness < -5 and len(rhythm.loudness_curve) == 45
        assert rhythm.duration == pytest.approx(45.0, abs=0.05)


def test_a_catalog_from_before_the_beat_model_gets_rhythm_without_reanalysis(library, tmp_path, monkeypatch):
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog

    catalog = Catalog(tmp_path / "catalog.db")
    monkeypatch.setenv("VIML_RHYTHM", "0")
    first = scan(catalog, str(library), jobs=1)
    assert first.analysed == 2 and first.rhythm is None
    assert all(catalog.rhythm(t.hash) is None for t in catalog.tracks())
    monkeypatch.delenv("VIML_RHYTHM")
    second = scan(catalog, str(library), jobs=1)
    assert (second.analysed, second.rhythm_measured, second.rhythm_failed) == (0, 2, 0)
    assert all(catalog.rhythm(t.hash) is not None for t in catalog.tracks())
    third = scan(catalog, str(library), jobs=1)
    assert (third.analysed, third.rhythm_measured, third.unchanged) == (0, 0, 2)


def test_suggestions_start_on_downbeats_and_the_bpm_filter_reads_measured_tempo(library, tmp_path):
    from e2e_helpers import zero_shot_bundle
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Filters, Searcher, SuggestRequest

    catalog = Catalog(tmp_path / "catalog.db")
    scan(catalog, str(library), jobs=1)
    bundle = open_bundle(zero_shot_bundle())
    searcher = Searcher(catalog, bundle)
    result = searcher.suggest(SuggestRequest(prompt="drums", top=2))
    assert len(result.suggestions) == 2
    for suggestion in result.suggestions:
        rhythm = catalog.rhythm(catalog.track(suggestion.path).hash)
        assert suggestion.on_downbeat and suggestion.start_bar >= 1
        assert np.min(np.abs(rhythm.beats.downbeats - suggestion.start)) < 1e-3
        assert suggestion.measured_tempo == pytest.approx(rhythm.beats.tempo, abs=0.01)
    slow = searcher.suggest(SuggestRequest(prompt="drums", top=5, filters=Filters(min_bpm=90, max_bpm=100)))
    assert [Path(s.path).name for s in slow.suggestions] == ["groove_96.wav"]


def test_suggest_fit_writes_loudness_matched_edits_and_fit_reads_the_catalog(library, tmp_path, monkeypatch):
    import av
    from e2e_helpers import zero_shot_bundle
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.engine.music.rhythm import analysis
    from viml.engine.music.rhythm.loudness import integrated_loudness

    from viml.cli import main

    db = tmp_path / "catalog.db"
    with Catalog(db) as catalog:
        scan(catalog, str(library), jobs=1)

    def no_analysis(*args, **kwargs):
        raise AssertionError("the catalog holds this track's rhythm: nothing is analysed again")

    monkeypatch.setattr(analysis, "analyze_rhythm_file", no_analysis)
    out = tmp_path / "fitted"
    code = main(["suggest", "--prompt", "drums", "--bundle", str(zero_shot_bundle()), "--catalog", str(db),
                 "--top", "2", "--fit", str(out), "--fit-length", "8", "--format", "json"])  # fmt: skip
    assert code == 0
    written = sorted(out.glob("*.wav"))
    assert len(written) == 2
    for path in written:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray() for f in container.decode(audio=0)]
            stream = container.streams.audio[0]
            assert (stream.rate, stream.channels) == (RATE, 2)
        samples = np.concatenate(frames, axis=1).reshape(-1, 2).T  # packed s16: channels interleaved
        assert samples.shape[1] == 8 * RATE  # exact to the sample
        mono = samples.mean(axis=0).astype(np.float32) / (32768.0 if samples.dtype == np.int16 else 1.0)
        # At the target loudness, unless the peak limit (-1 dBFS) stopped the gain first.
        peak_db = 20 * np.log10(np.abs(samples).max() / 32768.0)
        assert integrated_loudness(mono, RATE) == pytest.approx(-16.0, abs=1.0) or peak_db == pytest.approx(
            -1.0, abs=0.1
        )
    track = next(library.glob("groove_124.wav"))
    code = main(["fit", str(track), "--start", "10", "--duration", "12.5", "-o", str(tmp_path / "one.flac"),
                 "--catalog", str(db)])  # fmt: skip
    assert code == 0 and (tmp_path / "one.flac").stat().st_size > 0
