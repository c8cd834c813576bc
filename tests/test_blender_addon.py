"""The Blender VSE add-on in Debian's headless Blender against a running `viml serve`.

`viml integrations install blender` asks Blender for its add-ons folder (BLENDER_USER_SCRIPTS points
it at a temporary one) and enables the add-on. A script in Blender then trims a movie strip of the e2e
world (in 1 s, out 5 s, at the clip's 12 fps), asks the panel's operator for suggestions, saves the
.blend, places the first one, saves, reopens the file and mixes two seconds of the scene's sound down.
Checked from here: the panel's suggestions are the service's for that clip and in/out; the sound strip
has the excerpt's file, the clip's first frame and length, on a channel of its own; the mixdown is the
excerpt from its first sample and the excerpt starts at the suggested part of the track (by
cross-correlation with the track).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import e2e_helpers as e2e
import httpx
import numpy as np
import pytest
from scipy.signal import correlate
from service_helpers import library, running_service
from viml.engine.media import read_audio

RATE = 24000  # the world's music; the mixdown is resampled to it for the comparison
IN_SECONDS, OUT_SECONDS = 1.0, 5.0
PROMPT = "warm"

SCRIPT = (
    r"""
import json, os, sys
import addon_utils, bpy

video, fps, blend, mixdown, report_path = sys.argv[sys.argv.index("--") + 1:]
fps = int(fps)
assert addon_utils.check("viml_vse")[1], "the add-on is not enabled"
report = {}
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = fps, 1.0
editor = scene.sequence_editor_create()
clip = editor.sequences.new_movie("clip", video, 1, 1)
clip.frame_offset_start = round(IN_SECONDS * fps)
clip.frame_final_duration = round((OUT_SECONDS - IN_SECONDS) * fps)
editor.active_strip = clip
scene.viml.prompt = PROMPT
bpy.ops.wm.save_as_mainfile(filepath=blend)
assert bpy.ops.viml.suggest() == {"FINISHED"}, scene.viml.message
report["message"] = scene.viml.message
report["results"] = [[r.path, round(r.start, 3), r.why] for r in scene.viml.results]
assert bpy.ops.viml.place() == {"FINISHED"}
report["placed"] = scene.viml.message
bpy.ops.wm.save_mainfile()
clip_start, clip_frames = clip.frame_final_start, clip.frame_final_duration

bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
sounds = [s for s in scene.sequence_editor.sequences_all if s.type == "SOUND"]
report["sounds"] = [{"file": bpy.path.abspath(s.sound.filepath), "stored": s.sound.filepath,
                     "frame": s.frame_final_start, "frames": s.frame_final_duration, "channel": s.channel}
                    for s in sounds]
report["clip"] = {"frame": clip_start, "frames": clip_frames}
scene.frame_start, scene.frame_end = clip_start, clip_start + 2 * fps - 1
scene.render.ffmpeg.audio_mixrate = 48000
bpy.ops.sound.mixdown(filepath=mixdown, container="WAV", codec="PCM", format="S16")
with open(report_path, "w") as out:
    json.dump(report, out)
""".replace("IN_SECONDS", str(IN_SECONDS))
    .replace("OUT_SECONDS", str(OUT_SECONDS))
    .replace("PROMPT", repr(PROMPT))
)


@pytest.fixture(scope="module")
def service():
    with running_service(library()) as running:
        yield running


def blender_env(tmp_path: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts"),
            "BLENDER_USER_CONFIG": str(tmp_path / "config"), "VIML_HOME": str(home)}  # fmt: skip


def test_install_finds_blenders_add_ons_folder_and_enables_it(tmp_path, monkeypatch):
    assert shutil.which("blender"), "blender is missing: run scripts/system-deps.sh"
    for key, value in blender_env(tmp_path, tmp_path).items():
        monkeypatch.setenv(key, value)
    done = e2e.viml("integrations", "install", "blender", home=tmp_path)
    installed = tmp_path / "scripts" / "addons" / "viml_vse"
    assert str(installed) in done.stdout and "(enabled)" in done.stdout
    assert (installed / "__init__.py").exists() and (installed / "viml_client.py").exists()
    assert "viml_vse" in (tmp_path / "config" / "userpref.blend").read_bytes().decode("latin-1")


def test_the_panel_suggests_places_and_the_strip_plays_the_excerpt(service, tmp_path, monkeypatch):
    for key, value in blender_env(tmp_path, service.library.home).items():
        monkeypatch.setenv(key, value)
    e2e.viml("integrations", "install", "blender", home=service.library.home)
    world = e2e.world()
    video = str(world.video_path(world.pieces[2]))
    with av.open(video) as container:
        fps = int(container.streams.video[0].average_rate)
    script, blend = tmp_path / "panel.py", tmp_path / "edit.blend"
    mixdown, report_file = tmp_path / "mixdown.wav", tmp_path / "report.json"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        ["blender", "-b", "--python-exit-code", "1", "--python", str(script), "--",
         video, str(fps), str(blend), str(mixdown), str(report_file)],
        capture_output=True, text=True, timeout=300, env=blender_env(tmp_path, service.library.home),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_file.read_text())

    # The panel asked for this clip's in/out: its suggestions are the service's for them.
    expected = httpx.post(service.url + "/v1/suggest", headers=service.headers(), timeout=120,
                          json={"video": video, "start": IN_SECONDS, "end": OUT_SECONDS, "prompt": PROMPT})  # fmt: skip
    assert [r[:2] for r in report["results"]] == [
        [s["path"], round(s["start"], 3)] for s in expected.json()["suggestions"]
    ]
    assert "clip + prompt" in report["message"] and all(r[2] for r in report["results"])

    # Placed at the clip's first frame, as long as the clip, on a free channel; kept through a save.
    (sound,) = report["sounds"]
    assert sound["frame"] == report["clip"]["frame"] == 1 + round(IN_SECONDS * fps)
    assert sound["frames"] == report["clip"]["frames"] == round((OUT_SECONDS - IN_SECONDS) * fps)
    assert sound["channel"] == 2 and sound["stored"].startswith("//viml_music/")
    excerpt = Path(sound["file"])
    assert excerpt.parent == tmp_path / "viml_music" and excerpt.exists()
    assert "fitted" in report["placed"] or "plain" in report["placed"]

    # The mixdown plays the excerpt from its first sample; the excerpt is the track from the best part.
    heard = read_audio(mixdown, RATE)
    music = read_audio(excerpt, RATE)
    assert heard.size == pytest.approx(2 * RATE, abs=RATE // fps)
    lag, peak = best_lag(music, heard[:RATE])
    assert abs(lag) < 0.002 and peak > 0.9, (lag, peak)
    track, start = report["results"][0][:2]
    position, peak = best_lag(read_audio(track, RATE), music[RATE // 10 : RATE])
    offset = position - RATE // 10 / RATE - start
    print(
        f"placed: {report['placed']}; mixdown vs excerpt {lag * 1000:+.2f} ms; excerpt from "
        f"{start + offset:.4f} s of the track (suggested {start} s, {offset * 1000:+.2f} ms)"
    )
    assert abs(offset) < 1 / fps and peak > 0.9, (position, start, peak)


def best_lag(source: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """Where in `source` `window` is (seconds) and the normalised correlation there."""
    score = correlate(source, window, mode="valid", method="fft")
    best = int(np.argmax(score))
    energy = np.linalg.norm(window) * np.linalg.norm(source[best : best + window.size])
    return best / RATE, float(score[best] / energy) if energy else 0.0
