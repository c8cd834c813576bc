"""The product path end to end, through the CLI in child processes: build a bundle, scan a tiny generated
world with the real musicnn models, search it with a prompt and with a clip, export a timeline.

(a) zero-shot bundle (real MiniLM + real musicnn, no CLIP): prompt search finds the music the prompt names
    and a clip query says clearly that this bundle cannot read pictures.
(b) demo bundle (a tiny ViML trained for a few steps on the world's features): clip search puts each
    clip's own music on top, with best offsets, matched tags and match curves; OTIO export.
"""

from __future__ import annotations

import json

import e2e_helpers as e2e
import pytest

pytest.importorskip("open_clip")


def pieces_with(tag: str) -> set[str]:
    world = e2e.world()
    return {str(world.music_path(p)) for p in world.pieces if tag in p.tags}


def scan(catalog, bundle, home) -> dict:
    done = e2e.viml("scan", str(e2e.world().root / "music"), "--catalog", str(catalog), "--bundle", str(bundle),
                    "--json", "-j", "1", home=home)  # fmt: skip
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def suggest(home, *args: str) -> list[dict]:
    done = e2e.viml("suggest", *args, "--format", "json", home=home)
    return json.loads(done.stdout[done.stdout.index("[") :])


def check_results(results: list[dict], clip_seconds: float | None) -> None:
    assert len(results) == len(e2e.world().pieces)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    for r in results:
        curve, step = r["curve"], r["segment_seconds"]
        # The curve is the segment grid's; a finer window (on a downbeat, or a 1 s grid without beats) may
        # fit better than the grid's best and then places the start (search/offsets.py).
        assert curve and r["sound_score"] >= max(curve) - 1e-5
        grid_best = step * curve.index(max(curve))
        if r["sound_score"] == pytest.approx(max(curve), abs=1e-5):
            assert abs(r["start"] - grid_best) < step or r["start"] == pytest.approx(grid_best)
        assert 0 <= r["start"] <= r["duration"]
        if r["start_bar"] is None:
            assert r["start"] == pytest.approx(round(r["start"]))  # the 1 s grid
        if clip_seconds is not None:
            assert r["end"] == pytest.approx(min(r["start"] + clip_seconds, r["duration"]), abs=1e-3)
        for tag in r["matched_tags"]:
            assert tag["probability"] >= 0.3 and isinstance(tag["in_prompt"], bool)


def test_zero_shot_bundle_prompt_search(tmp_path):
    bundle, home = e2e.zero_shot_bundle(), e2e.home()
    catalog = tmp_path / "catalog.sqlite"
    summary = scan(catalog, bundle, home)
    assert summary["analysed"] == 6 and not summary["failures"]
    assert summary["retrieval"]["bundle"] == "zero-shot" and summary["retrieval"]["embedded"] == 6
    assert summary["retrieval"]["space"].startswith("zero-shot-")

    for prompt, tag in (("jazz piano", "jazz"), ("dark techno", "techno"), ("calm ambient pads", "ambient")):
        # The sound side alone: this world's titles are random words ("Dark Voyage") and would mislead.
        results = suggest(home, "--prompt", prompt, "--catalog", str(catalog), "--bundle", str(bundle),
                          "--words-weight", "0", "--meaning-weight", "0")  # fmt: skip
        check_results(results, None)
        expected = pieces_with(tag)
        assert {r["path"] for r in results[: len(expected)]} == expected, (prompt, results[:3])
        assert results[0]["matched_tags"][0]["in_prompt"]  # the prompt's own word leads the tags
        assert results[0]["matched_tags"][0]["tag"].lower() in prompt

    video = str(e2e.world().video_path(e2e.world().pieces[0]))
    refused = e2e.viml("suggest", video, "--in", "0", "--out", "8", "--catalog", str(catalog),
                       "--bundle", str(bundle), home=home, check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "cannot read pictures" in refused.stderr and "--clip ViT-B-32:openai" in refused.stderr


def test_demo_bundle_clip_search_and_timeline(tmp_path):
    demo, home = e2e.demo_bundle(), e2e.home()
    world = e2e.world()
    catalog = tmp_path / "catalog.sqlite"
    first = scan(catalog, e2e.zero_shot_bundle(), home)
    assert first["analysed"] == 6
    # Another bundle: its space is filled from the stored music-model outputs, nothing is decoded again.
    again = scan(catalog, demo, home)
    assert again["analysed"] == 0 and again["unchanged"] == 6
    assert again["retrieval"]["embedded"] == 6 and again["retrieval"]["space"].startswith("viml-")

    on_top = 0
    for piece in world.pieces:
        video = str(world.video_path(piece))
        results = suggest(
            home, video, "--in", "0", "--out", "8", "--catalog", str(catalog), "--bundle", str(demo)
        )
        check_results(results, 8.0)
        ranks = [r["path"] for r in results]
        assert ranks.index(str(world.music_path(piece))) < 3, (piece.id, ranks)  # chance: 3 of 6
        on_top += ranks[0] == str(world.music_path(piece))
    assert on_top >= 4, on_top  # chance would be 1 of 6

    video = str(world.video_path(world.pieces[2]))
    common = ["--in", "0", "--out", "8", "--catalog", str(catalog), "--bundle", str(demo)]
    plain = suggest(home, video, *common)
    prompted = suggest(home, video, *common, "--prompt", "calm ambient pads", "--influence", "0.7")
    check_results(prompted, 8.0)
    assert [r["score"] for r in prompted] != [r["score"] for r in plain]  # the prompt counts
    # A prompt alone on a trained/demo bundle (no clip): finite scores, ranked like any query.
    prompt_only = suggest(
        home, "--prompt", "calm ambient pads", "--catalog", str(catalog), "--bundle", str(demo)
    )
    check_results(prompt_only, None)

    timeline = tmp_path / "edit.otio"
    done = e2e.viml("suggest", video, *common, "-n", "3", "--format", "otio", "-o", str(timeline),
                    "--alternatives", "muted", home=home)  # fmt: skip
    assert "3 music tracks (2 muted)" in done.stdout
    import opentimelineio as otio

    read = otio.adapters.read_from_file(str(timeline))
    video_track, *music_tracks = read.tracks
    assert len(music_tracks) == 3
    clip = video_track[0]
    assert clip.media_reference.target_url.endswith(world.pieces[2].video.split("/")[-1])
    assert clip.source_range.duration.to_seconds() == pytest.approx(8.0, abs=0.05)
    assert [track.enabled for track in music_tracks] == [True, False, False]  # only the chosen one plays
    for track, result in zip(music_tracks, plain[:3], strict=True):
        # Cut on the clip's frames (12 fps here): within half a frame of the suggested start.
        assert track[0].source_range.start_time.to_seconds() == pytest.approx(result["start"], abs=0.05)


def test_suggest_process_imports_no_torch(tmp_path):
    bundle, home = e2e.zero_shot_bundle(), e2e.home()
    catalog = tmp_path / "catalog.sqlite"
    scan(catalog, bundle, home)
    code = (
        "import sys; from viml.cli import main; "
        f"code = main(['suggest', '--prompt', 'piano', '--catalog', {str(catalog)!r}, '--bundle', {str(bundle)!r}]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(code)"
    )
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "VIML_HOME": str(home)})  # fmt: skip
    assert done.returncode == 0, done.stderr
