"""The main job end to end on a tiny demo world with the real music model and text encoder."""

from __future__ import annotations

import re

import pytest
from viml.demo.run import DemoConfig, run_demo
from viml.training.features import FeatureSet

from viml.cli import build_parser, main

TINY = DemoConfig(pieces=10, seconds=(8.0, 10.0), steps=20)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One tiny demo run shared by this module's tests: (folder, report)."""
    folder = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIML_HOME", str(tmp_path_factory.mktemp("home")))
        yield folder, run_demo(TINY, folder)


def test_help_lists_every_command():
    help_text = build_parser().format_help()
    for command in ("demo", "world", "features", "train", "eval", "tag", "scan", "suggest", "bundle", "app"):
        assert re.search(rf"^\s+{command}\s", help_text, re.MULTILINE), command


def test_tiny_demo_runs_end_to_end_and_says_what_is_random(demo):
    folder, report = demo
    lines = report.splitlines()
    assert any(line.startswith("chance") for line in lines)
    assert sum(line.startswith("ViML") for line in lines) == 3  # no text, tags, held-out description
    assert "RANDOMLY INITIALISED" in report
    assert "musicnn" in report and "all-MiniLM-L6-v2" in report
    features = FeatureSet.load(folder / f"features-{TINY.name}")
    assert len(features.items) == 10
    assert features.music_dim == 400  # both musicnn penultimate layers
    item = features.items[0]
    assert item.video.shape[0] >= 1 and item.texts["tags"] and item.text_embeddings["tags"].shape[1] == 384


def test_a_second_run_reuses_every_step(demo, monkeypatch):
    folder, report = demo
    import viml.demo.world.generate as generate
    import viml.training.extract as extract

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached step was recomputed")

    monkeypatch.setattr(generate, "generate_world", must_not_run)
    monkeypatch.setattr(extract, "extract_features", must_not_run)
    assert run_demo(TINY, folder).splitlines()[:6] == report.splitlines()[:6]


def test_eval_command_prints_the_table(demo, tmp_path, capsys):
    folder, _ = demo
    run, features = folder / f"run-{TINY.name}-tags", folder / f"features-{TINY.name}"
    arguments = [
        "eval",
        str(run),
        str(features),
        "--query-text",
        "none,tags",
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "chance" in out and "R@10" in out
    assert (tmp_path / "r.json").exists()
