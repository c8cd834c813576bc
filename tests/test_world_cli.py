"""`viml world generate / info` through the real CLI entry point."""

from __future__ import annotations

from viml.demo.world.generate import load_world
from viml.engine.media import probe

from viml.cli import main


def test_generate_info_and_force(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["world", "generate", str(out), "--pieces", "3", "--seconds", "3", "4", "--workers", "1"]) == 0
    )
    assert "wrote 3 pieces" in capsys.readouterr().out
    assert main(["world", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "pieces 3" in info and "splits train 1  val 1  test 1" in info

    # A second generate refuses to overwrite; --force replaces the world and leaves no stale files.
    assert main(["world", "generate", str(out), "--pieces", "1", "--seconds", "3", "3"]) == 1
    assert "already holds a world" in capsys.readouterr().err
    (out / "notes.txt").write_text("keep me")
    args = ["world", "generate", str(out), "--pieces", "1", "--seconds", "3", "3", "--video-audio", "--force"]
    assert main(args + ["--workers", "1"]) == 0
    world = load_world(out)
    assert len(world.pieces) == 1
    assert sorted(p.name for p in (out / "music").iterdir()) == [world.music_path(world.pieces[0]).name]
    assert (out / "notes.txt").read_text() == "keep me"
    video = probe(world.video_path(world.pieces[0]))
    assert video.has_audio and video.has_video and world.video_audio


def test_info_reports_missing_files_and_bad_folders(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["world", "generate", str(out), "--pieces", "1", "--seconds", "2", "2", "--workers", "1"]) == 0
    )
    world = load_world(out)
    world.video_path(world.pieces[0]).unlink()
    assert main(["world", "info", str(out)]) == 1
    assert "missing 1 files" in capsys.readouterr().err
    assert main(["world", "info", str(tmp_path / "nowhere")]) == 1
    assert "no world.json" in capsys.readouterr().err
