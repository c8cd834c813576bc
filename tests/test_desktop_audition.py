"""Audition against a real, real-time-paced PulseAudio null sink: music follows the playing video.

The sink is started privately for the test (its own runtime folder and socket), so it works as root in
CI with no sound card; the test is skipped only when pulseaudio or PortAudio is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from media_factory import write_video
from viml.desktop.audition import AuditionEngine
from viml.desktop.player import ClipPlayer


@pytest.fixture(scope="module")
def null_sink(tmp_path_factory):
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (scripts/system-deps.sh installs it)")
    runtime = tmp_path_factory.mktemp("pulse")
    socket = runtime / "native"
    command = [
        "pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit",
        "--use-pid-file=no", "--load=module-null-sink sink_name=viml_null",
        f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
    ]  # fmt: skip
    environment = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "HOME": str(runtime)}
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not socket.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.05)
    if not socket.exists():
        server.kill()
        pytest.fail(f"pulseaudio did not start: {server.stderr.read().decode(errors='replace')[-500:]}")
    previous = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = f"unix:{socket}"  # ALSA's pulse plugin (PortAudio) connects here
    try:
        import sounddevice
    except OSError as error:
        pytest.skip(f"PortAudio is not installed: {error}")
    sounddevice._terminate()
    sounddevice._initialize()  # re-enumerate devices now that a server is up
    yield "pulse"
    sounddevice._terminate()
    sounddevice._initialize()
    if previous is None:
        os.environ.pop("PULSE_SERVER", None)
    else:
        os.environ["PULSE_SERVER"] = previous
    server.terminate()
    server.wait(timeout=10)


def test_music_follows_the_video_clock(qtbot, tmp_path, null_sink):
    assert AuditionEngine.output_available(null_sink) is None
    clip = write_video(tmp_path / "clip.mp4", seconds=8.0, fps=12, with_audio=True)
    player = ClipPlayer()
    qtbot.addWidget(player)
    with qtbot.waitSignal(player.rangeChanged, timeout=5000):
        player.open(clip)
    player.set_range(1.0, 7.0)
    rate = 48000
    music = np.sin(2 * np.pi * 220 * np.arange(20 * rate) / rate).astype(np.float32) * 0.2
    engine = AuditionEngine(player.clock, device=null_sink, sample_rate=rate)
    # The music buffer starts 5 s into the file; the best offset is 6 s: clip in (1 s) plays file 6 s.
    engine.load(music, rate, music_start=5.0, offset=6.0, clip_in=1.0)
    engine.start()
    player.set_duck(True)
    assert player.audio.volume() == 0.0  # the video's own sound is muted while music plays
    player.play_range()
    samples = []  # the player's own position, read on the GUI thread, as an independent record
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        qtbot.wait(20)
        samples.append((time.monotonic(), player.position()))
    engine.stop()
    player.pause()

    every = engine.log[len(engine.log) // 4 :]  # past the sink's start-up priming
    frames = sum(r.frames for r in every[:-1])
    assert frames / rate / (every[-1].dac_time - every[0].dac_time) == pytest.approx(1.0, abs=0.1)

    # The player's position moves in frame steps: keep the moments each new frame position appeared,
    # so interpolating between them does not lag by half a frame.
    changes = [samples[0]] + [b for a, b in zip(samples, samples[1:], strict=False) if b[1] != a[1]]
    times, positions = np.array(changes).T
    records = [r for r in engine.log if not np.isnan(r.music_position)]
    checked = 0
    for record in records:
        # Judge sync where the picture really moved (a loaded machine can stall the video decoder;
        # the music then falls silent and picks up with it, which the clock tests cover).
        moving = np.interp(record.dac_time, times, positions) - np.interp(
            record.dac_time - 0.3, times, positions
        )
        if times[0] + 0.3 < record.dac_time < times[-1] and moving > 0.15:
            video = np.interp(record.dac_time, times, positions)
            # music position - offset = video position - clip in, within a video frame or two
            assert record.music_position - 6.0 == pytest.approx(video - 1.0, abs=0.12)
            checked += 1
    assert checked > 20


def test_no_device_is_reported_not_raised():
    reason = AuditionEngine.output_available("no-such-device-xyz")
    assert reason is not None and "no audio output device" in reason
