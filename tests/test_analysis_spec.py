"""The bundle owns the analysis spec: written at export, read back by scans, search and queries.

- the spec id changes exactly with what a stored analysis depends on (music model files, segment rules);
- bundles built by the CLI carry the spec their training used (demo: the features' segment length);
- a scan with a bundle whose spec differs from the catalog's re-analyses, and says so; a search with a
  bundle the catalog was not analysed for says "re-analyse" instead of failing on dimensions.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import e2e_helpers as e2e
import pytest
from viml.engine.bundles.manifest import read_manifest, write_manifest
from viml.engine.bundles.spec import AnalysisSpec, spec_from_manifest


def test_spec_id_follows_what_the_analysis_depends_on() -> None:
    base = AnalysisSpec(music_model_files={"MTT_musicnn.onnx": "a" * 64})
    assert base.analysis_id == AnalysisSpec(music_model_files={"MTT_musicnn.onnx": "a" * 64}).analysis_id
    assert base.analysis_id != AnalysisSpec(music_model_files={"MTT_musicnn.onnx": "b" * 64}).analysis_id
    assert (
        base.analysis_id
        != AnalysisSpec(music_model_files=base.music_model_files, segment_seconds=5).analysis_id
    )
    other_fraction = AnalysisSpec(music_model_files=base.music_model_files, min_segment_fraction=0.25)
    assert base.analysis_id != other_fraction.analysis_id
    # Video sampling and the tag threshold change no stored music analysis.
    same = AnalysisSpec(music_model_files=base.music_model_files, fps=3.0, tag_threshold=0.5)
    assert base.analysis_id == same.analysis_id
    assert AnalysisSpec.from_json(json.loads(json.dumps(base.to_json()))) == base
    for bad in ({"segment_seconds": 0}, {"fps": float("nan")}, {"min_segment_fraction": 2.0}):
        with pytest.raises(ValueError):
            AnalysisSpec(**bad)


def test_bundles_written_before_the_spec_get_it_from_their_fields() -> None:
    manifest = {
        "preprocessing": {"video": {"fps": 6.0, "segment_seconds": 10.0, "min_fraction": 0.5}},
        "music_model": {"folder": "music", "name": "musicnn"},
        "files": {
            "music/MTT_musicnn.onnx": "c" * 64,
            "music/manifest.json": "d" * 64,
            "text_encoder.onnx": "e" * 64,
        },
        "tag_vocabularies": {"MTT": ["piano"]},
    }
    spec = spec_from_manifest(manifest)
    assert spec.music_model_files == {"MTT_musicnn.onnx": "c" * 64}
    assert (spec.segment_seconds, spec.fps, spec.tag_vocabularies) == (10.0, 6.0, {"MTT": ["piano"]})


def test_cli_bundles_carry_the_spec_their_training_used() -> None:
    zero_shot = json.loads((e2e.zero_shot_bundle() / "manifest.json").read_text())
    demo = json.loads((e2e.demo_bundle() / "manifest.json").read_text())
    for manifest in (zero_shot, demo):
        spec = AnalysisSpec.from_json(manifest["analysis"])
        assert spec.segment_seconds == 10.0 and spec.fps == 6.0
        assert set(spec.music_model_files) >= {"MTT_musicnn.onnx", "MSD_musicnn.onnx"}
        assert set(spec.tag_vocabularies) == {"MTT", "MSD"}
    # Both bundles carry the same converted musicnn and segment rules: one analysis serves both.
    assert spec_from_manifest(zero_shot).analysis_id == spec_from_manifest(demo).analysis_id


def edit_manifest(folder: Path, edit: Callable[[dict], object]) -> None:
    """Change a bundle's manifest the way the project does: through its writer (files and manifest
    rehashed), so it stays a valid bundle; a manifest edited by hand is refused."""
    manifest = read_manifest(folder)
    edit(manifest)
    write_manifest(folder, manifest)


def test_scan_reanalyses_for_a_bundle_with_another_spec(tmp_path) -> None:
    home = e2e.home()
    music = str(e2e.world().root / "music")
    catalog = tmp_path / "catalog.sqlite"
    ten = e2e.zero_shot_bundle()
    five = tmp_path / "zero-shot-5s"
    shutil.copytree(ten, five)
    edit_manifest(five, lambda manifest: manifest["analysis"].update(segment_seconds=5.0))

    def scan(bundle) -> dict:
        done = e2e.viml("scan", music, "--catalog", str(catalog), "--bundle", str(bundle), "--json", "-j", "1",
                        home=home)  # fmt: skip
        return e2e.last_json(done.stdout)

    first = scan(ten)
    assert first["analysed"] == 6 and first["reanalysed"] == 0
    again = scan(ten)
    assert again["analysed"] == 0 and again["unchanged"] == 6  # same spec: nothing to redo
    # A search with the 5 s bundle says what to do instead of failing on the stored analyses.
    refused = e2e.viml("suggest", "--prompt", "piano", "--catalog", str(catalog), "--bundle", str(five),
                       home=home, check=False)  # fmt: skip
    assert refused.returncode == 1 and "re-analyse" in refused.stderr and "viml scan" in refused.stderr
    switched = scan(five)
    assert switched["reanalysed"] == 6 and switched["analysis"] != first["analysis"]
    text = e2e.viml(
        "scan", music, "--catalog", str(catalog), "--bundle", str(ten), "-j", "1", home=home
    ).stdout
    assert "re-analysed 6" in text  # back to 10 s segments, said in words
    done = e2e.viml("suggest", "--prompt", "piano", "--catalog", str(catalog), "--bundle", str(five),
                    "--format", "json", home=home, check=False)  # fmt: skip
    assert done.returncode == 1 and "re-analyse" in done.stderr
    scan(five)
    results = e2e.last_json(e2e.viml("suggest", "--prompt", "piano", "--catalog", str(catalog), "--bundle", str(five),
                                     "--format", "json", home=home).stdout)  # fmt: skip
    assert {r["segment_seconds"] for r in results} == {5.0}
    assert any(len(r["curve"]) > 2 for r in results)  # 8-20 s tracks in 5 s segments
