"""Refine in words (search/like.py): a reference track moved by words, on a generated library of real audio
(drum grooves at known tempos and gains, drumless pads) scanned with the real musicnn and BeatNet and
ranked by the real zero-shot bundle: comparatives move the measured attribute the asked way relative to
the reference, the reference is left out, like-only ranks as `viml similar`, a request without a reference
never reaches the module; the CLI, the service and the app take the reference with @OFFSET."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import e2e_helpers as e2e
import numpy as np
import pytest
from hostile_media import write_wav

RATE = 22050
SECONDS = 30.0
TEMPOS = (84.0, 100.0, 120.0, 144.0)
QUIET = 0.25  # -12 dB


def groove(bpm: float, gain: float, seed: int, drums: bool = True, seconds: float = SECONDS) -> np.ndarray:
    """Kick/snare/hats at `bpm` over a bass line, or (drums False) a soft pad pulsing at the same rate:
    float32 [2, n], peak `gain` / 2."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    beat = 60.0 / bpm
    t = np.arange(int(0.25 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = rng.normal(0, 1, len(t)) * np.exp(-t * 25) * 0.6
    hat = rng.normal(0, 1, len(t)) * np.exp(-t * 90) * 0.2
    root = 110.0 * 2 ** (rng.integers(0, 7) / 12)
    bar = np.arange(int(beat * 4 * RATE)) / RATE
    for k in range(int(seconds / beat * 2)):
        at = int(k * beat / 2 * RATE)
        parts = []
        if drums:
            parts.append(hat)
            if k % 2 == 0:
                parts.append(kick if (k // 2) % 2 == 0 else snare)
        if k % 8 == 0:  # each bar: a bass note (grooves) or a chord (pads)
            if drums:
                parts.append(0.3 * np.sin(2 * np.pi * root * bar) * np.exp(-bar * 1.5))
            else:
                chord = sum(np.sin(2 * np.pi * root * 2 * r * bar) for r in (1.0, 1.26, 1.5))
                parts.append(0.2 * chord * np.sin(np.pi * bar / bar[-1]))
        for part in parts:
            stop = min(n, at + len(part))
            out[at:stop] += part[: stop - at]
    out = 0.5 * gain * out / np.abs(out).max()
    return np.stack([out, out]).astype(np.float32)


@dataclass(frozen=True)
class Library:
    home: Path
    folder: Path
    catalog: Path
    bundle: Path
    reference: Path  # groove at 120 BPM, full level
    copy: Path  # the same content under another name (left out with the reference)


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Library:
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.core.errors import WeightsUnavailableError
    from viml.export_onnx.beatnet import convert, find_beatnet

    bundle = e2e.zero_shot_bundle()
    root = tmp_path_factory.mktemp("refine")
    home = root / "home"
    shutil.copytree(e2e.home() / "models" / "musicnn", home / "models" / "musicnn")
    try:
        source = find_beatnet(download=False)
    except WeightsUnavailableError:
        pytest.skip("the BeatNet 1.1.3 wheel is not available offline on this machine")
    convert(wheel=source.path, output=home / "models" / "beatnet")
    folder = root / "music"
    folder.mkdir()
    seed = 0
    for bpm in TEMPOS:
        for gain, name in ((1.0, "loud"), (QUIET, "quiet")):
            seed += 1
            write_wav(folder / f"groove_{int(bpm)}_{name}.wav", groove(bpm, gain, seed), RATE)
    for bpm in (100.0, 120.0):
        seed += 1
        write_wav(folder / f"pad_{int(bpm)}.wav", groove(bpm, 1.0, seed, drums=False), RATE)
    reference = folder / "groove_120_loud.wav"
    copy = folder / "copies" / "same_as_120.wav"
    copy.parent.mkdir()
    shutil.copy(reference, copy)
    catalog = root / "catalog.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIML_HOME", str(home))
        with Catalog(catalog) as opened:
            summary = scan(opened, str(folder), jobs=1, progress=False, bundle=bundle)
    assert summary.analysed == len(TEMPOS) * 2 + 2 and summary.rhythm, summary
    return Library(home, folder, catalog, bundle, reference, copy)


@pytest.fixture
def home(lib, monkeypatch) -> Path:
    """The library's VIML_HOME (its converted models: a file that is not catalogued is analysed)."""
    monkeypatch.setenv("VIML_HOME", str(lib.home))
    return lib.home


@pytest.fixture
def searcher(lib, home):
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher

    with Catalog(lib.catalog, must_exist=True) as catalog:
        yield Searcher(catalog, open_bundle(str(lib.bundle)))


def search(searcher, **request):
    from viml.search import SuggestRequest

    return searcher.suggest(SuggestRequest(**request))


def measured(searcher, suggestion, attribute: str) -> float:
    """The attribute of a result's best part as the moves read it (tempo: the track's), in its unit."""
    from viml.search.like import library, segment_values, shown_value

    table = library(searcher).table
    index = table.paths.index(suggestion.path)
    first = int(table.starts[index])
    rows = first + np.flatnonzero(
        (table.segment_starts[first : first + int(table.counts[index])] + 10.0 > suggestion.start)
        & (table.segment_starts[first : first + int(table.counts[index])] < suggestion.end)
    )
    values = segment_values(searcher)[attribute][rows]
    return shown_value(attribute, float(np.nanmean(values)))


def top_mean(searcher, suggestions, attribute: str, count: int = 3) -> float:
    return float(np.mean([measured(searcher, s, attribute) for s in suggestions[:count]]))


def reference_value(searcher, like: str, attribute: str) -> float:
    from viml.search.like import find_reference, parse_like, shown_value

    return shown_value(attribute, find_reference(searcher, parse_like(like), None).attributes[attribute])


# --- reading the reference and the words ---------------------------------------------------------------


def test_like_spec_reads_offsets_and_keeps_file_names_with_at(tmp_path):
    from viml.core.errors import UserFacingError
    from viml.search.like import parse_like

    assert (parse_like("song.wav@75").track, parse_like("song.wav@75").offset) == ("song.wav", 75.0)
    assert parse_like("a@b/song.wav@1:15.5").offset == 75.5
    assert parse_like("Night Drive").offset is None
    named = tmp_path / "take@2.wav"
    named.write_bytes(b"RIFF")
    assert parse_like(str(named)).track == str(named)  # a file named so is that file
    assert parse_like("song@2x.wav").track == "song@2x.wav"
    for bad in ("song.wav@-3", "song.wav@1::2", "  "):
        with pytest.raises(UserFacingError):
            parse_like(bad)


def test_words_split_into_moves_and_terms():
    from viml.search.like import parse_words

    words = parse_words("much calmer and a bit slower, no drums, more piano")
    assert [(m.attribute, m.direction, m.amount) for m in words.moves] == [
        ("loudness", -1, 2.0), ("tempo", -1, 0.5)
    ]  # fmt: skip
    weights = words.terms.weights()
    assert weights["drums"] < 0 and weights["piano"] > 0
    assert "calmer" not in words.terms.text and "slower" not in words.terms.text
    assert [m.direction for m in parse_words("brighter, faster, louder").moves] == [1, 1, 1]


# --- ranking -------------------------------------------------------------------------------------------


def test_like_only_ranks_as_similar_and_leaves_the_reference_out(lib, searcher):
    result = search(searcher, like=str(lib.reference), top=20)
    tracks, _ = searcher.similar(str(lib.reference), top=20)
    paths = [s.path for s in result.suggestions]
    assert paths == [t.path for t in tracks]
    assert [s.score for s in result.suggestions] == [t.score for t in tracks]
    assert str(lib.reference) not in paths and str(lib.copy) not in paths  # same content: left out too
    assert len(paths) == len(TEMPOS) * 2 + 2 - 1
    # A part, matched as a sequence, as `viml similar --start --end`.
    part = search(searcher, like=f"{lib.reference}@0:10", top=20)
    tracks, _ = searcher.similar(str(lib.reference), start=10.0, end=40.0, top=20)
    assert [s.path for s in part.suggestions] == [t.path for t in tracks]
    assert "like groove_120_loud.wav @0:10.0" in part.header


def test_a_search_without_a_reference_never_reaches_the_like_module(lib, searcher, monkeypatch):
    import viml.search.like as like

    before = search(searcher, prompt="calmer, no drums", top=20)
    for name in ("suggest_like", "parse_words", "find_reference", "move_bias"):
        monkeypatch.setattr(like, name, lambda *a, **k: pytest.fail("a prompt-only search read like.py"))
    after = search(searcher, prompt="calmer, no drums", top=20)
    assert [(s.path, s.score, s.start) for s in after.suggestions] == [
        (s.path, s.score, s.start) for s in before.suggestions
    ]
    assert "like" not in after.header


@pytest.mark.parametrize(
    ("reference", "words", "attribute", "direction"),
    [
        ("groove_120_loud", "calmer", "loudness", -1),
        ("groove_144_quiet", "louder", "loudness", 1),
        ("groove_100_loud", "slower", "tempo", -1),
        ("groove_120_loud", "faster", "tempo", 1),
    ],
)
def test_comparatives_move_the_measured_attribute_relative_to_the_reference(
    lib, searcher, reference, words, attribute, direction
):
    like = str(lib.folder / f"{reference}.wav")
    anchor = reference_value(searcher, like, attribute)
    baseline = search(searcher, like=like, top=3).suggestions
    moved = search(searcher, like=like, prompt=words, top=3).suggestions
    refined, before = top_mean(searcher, moved, attribute), top_mean(searcher, baseline, attribute)
    assert direction * (refined - anchor) > 0, (words, anchor, refined)
    # The words moved the results, unless like-only's were all on the asked side already.
    already = all(direction * (measured(searcher, s, attribute) - anchor) > 0 for s in baseline)
    assert direction * (refined - before) > 0 or (already and direction * (refined - before) >= 0), (
        words, anchor, before, refined
    )  # fmt: skip
    assert all(like != s.path for s in moved)


def test_louder_from_a_quiet_reference_and_without_drums(lib, searcher):
    quiet = str(lib.folder / "groove_100_quiet.wav")
    anchor = reference_value(searcher, quiet, "loudness")
    louder = search(searcher, like=quiet, prompt="louder", top=3).suggestions
    assert top_mean(searcher, louder, "loudness") > anchor + 3.0  # at least 3 LU louder on average
    from viml.search.like import library
    from viml.search.prompt_terms import concept_columns

    tags, names = searcher._tag_matrix(library(searcher).table)
    drums = concept_columns(names)["drums"]

    def drum_share(suggestions) -> float:
        from viml.search.like import library

        table = library(searcher).table
        rows = [int(table.starts[table.paths.index(s.path)]) for s in suggestions]
        return float(tags[rows][:, drums].max(axis=1).mean())

    like = str(lib.reference)
    plain = search(searcher, like=like, top=3).suggestions
    without = search(searcher, like=like, prompt="without drums", top=3).suggestions
    assert drum_share(without) < drum_share(plain)
    assert any("pad_" in s.path for s in without)


def test_a_file_that_is_not_catalogued_is_analysed(lib, searcher, tmp_path):
    outside = tmp_path / "temp_music.wav"
    write_wav(outside, groove(132.0, 1.0, seed=99), RATE)
    result = search(searcher, like=str(outside), prompt="slower", top=3)
    assert "like temp_music.wav; tempo below" in result.header
    anchor = reference_value(searcher, str(outside), "tempo")
    assert 120 < anchor < 145  # BeatNet measured the file's tempo in the analysis
    assert top_mean(searcher, result.suggestions, "tempo") < anchor
    # A copy of a catalogued file is that content: read from the catalog, and its files left out.
    copied = tmp_path / "elsewhere.wav"
    shutil.copy(lib.reference, copied)
    paths = [s.path for s in search(searcher, like=str(copied), top=20).suggestions]
    assert str(lib.reference) not in paths and str(lib.copy) not in paths


def test_a_catalogued_title_or_file_name_names_the_reference(lib, searcher):
    from viml.core.errors import UserFacingError

    by_name = search(searcher, like="groove_144_quiet", top=5)
    assert by_name.suggestions and "groove_144_quiet.wav" in by_name.header
    with pytest.raises(UserFacingError, match="names 8 catalogued tracks"):
        search(searcher, like="groove", top=5)
    with pytest.raises(UserFacingError, match="no such file, and no catalogued track"):
        search(searcher, like="/no/such/track.wav")
    with pytest.raises(UserFacingError, match="has no segment between 600"):
        search(searcher, like=f"{lib.reference}@10:00")


# --- surfaces ----------------------------------------------------------------------------------------


def test_cli_suggest_like_with_offset_and_clear_errors(lib, home):
    done = e2e.viml("suggest", "--like", f"{lib.reference}@0:10", "--prompt", "calmer", "--catalog",
                    str(lib.catalog), "--bundle", str(lib.bundle), "--format", "json", "-n", "3", home=home)  # fmt: skip
    rows = json.loads(done.stdout)
    assert len(rows) == 3 and str(lib.reference) not in [r["path"] for r in rows]
    table = e2e.viml("suggest", "--like", str(lib.reference), "--prompt", "slower", "--catalog", str(lib.catalog),
                     "--bundle", str(lib.bundle), home=home)  # fmt: skip
    assert "like groove_120_loud.wav; tempo below" in table.stdout.splitlines()[0]
    for like, words in (("/no/such/track.wav", "no such file"), (f"{lib.reference}@-3", "bad offset")):
        failed = e2e.viml("suggest", "--like", like, "--catalog", str(lib.catalog), "--bundle", str(lib.bundle),
                          home=home, check=False)  # fmt: skip
        assert failed.returncode == 1 and words in failed.stderr, failed.stderr


def test_service_takes_a_catalogued_like_with_offset(lib, home):
    from starlette.testclient import TestClient
    from viml.engine.runtime import open_bundle
    from viml.search.service.app import create_app
    from viml.search.service.work import Work

    app = create_app(Work(lib.catalog, open_bundle(str(lib.bundle))), "secret")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        headers = {"Authorization": "Bearer secret"}
        answer = client.post("/v1/suggest", headers=headers,
                             json={"like": f"{lib.reference}@10", "prompt": "calmer", "top": 3})  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "like groove_120_loud.wav @0:10.0; loudness below" in body["header"]
        assert str(lib.reference) not in [s["path"] for s in body["suggestions"]]
        for like, status, words in (("/not/catalogued.wav", 404, "not in the catalog"),
                                    (f"{lib.reference}@1:x", 404, "not in the catalog"),
                                    (f"{lib.reference}@-1", 400, "bad offset")):  # fmt: skip
            answer = client.post("/v1/suggest", headers=headers, json={"like": like})
            assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_app_more_like_this_runs_the_refined_search(lib, home, qtbot, tmp_path):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(lib.catalog)
    settings.bundle = str(lib.bundle)
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    window.prompt.setText("drums")
    qtbot.waitUntil(lambda: window.results_model.rowCount() > 3 and window.is_idle(), timeout=30000)
    actions = [a.text() for a in window.results.actions()]
    assert "More like this…" in actions
    row = next(n for n, s in enumerate(window.results_model.rows) if s.path == str(lib.reference))
    window.results.selectRow(row)
    window.refine.action.trigger()
    dialog = window.refine.dialog
    assert dialog is not None and "groove_120_loud" in dialog.labelText()
    dialog.setTextValue("calmer")
    dialog.accept()
    qtbot.waitUntil(lambda: window.results_hint.text().startswith("Like groove_120_loud.wav: calmer")
                    and window.is_idle(), timeout=30000)  # fmt: skip
    paths = [s.path for s in window.results_model.rows]
    assert paths and str(lib.reference) not in paths
    # Editing the prompt ends the refinement: a search of its own again.
    window.prompt.setText("piano")
    qtbot.waitUntil(lambda: window.is_idle() and not window.results_hint.text().startswith("Like"),
                    timeout=30000)  # fmt: skip
    assert window.refine.current is None
    window.close()


def test_a_clip_still_counts_by_the_influence(monkeypatch):
    """With a bundle that reads pictures (the demo bundle on the e2e world): at influence 0 the clip alone
    ranks (the clip-only search's order, the reference left out); at 1 the clip does not count."""
    pytest.importorskip("open_clip")
    from service_helpers import library as world_library
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher

    world_lib, world = world_library(), e2e.world()
    monkeypatch.setenv("VIML_HOME", str(world_lib.home))
    reference = str(world.music_path(world.pieces[0]))
    videos = [str(world.video_path(p)) for p in world.pieces[1:3]]
    with Catalog(world_lib.catalog, must_exist=True) as catalog:
        searcher = Searcher(catalog, open_bundle(str(world_lib.bundle)))
        clip = {"start": 0.0, "end": 8.0, "top": 10, "fine_offsets": False}
        alone = search(searcher, video=videos[0], **clip).suggestions
        picture = search(searcher, video=videos[0], like=reference, influence=0.0, **clip).suggestions
        assert [s.path for s in picture] == [s.path for s in alone if s.path != reference]
        assert [s.score for s in picture] == [s.score for s in alone if s.path != reference]
        liked = [
            [s.path for s in search(searcher, video=video, like=reference, influence=1.0, **clip).suggestions]
            for video in videos
        ]
        assert liked[0] == liked[1] and reference not in liked[0]
        mixed = search(searcher, video=videos[0], like=reference, prompt="calmer", influence=0.5, **clip)
        assert mixed.suggestions and "loudness below" in mixed.header
