"""Audition against a real, real-time-paced PulseAudio null sink: music follows the playing video.

The sink is started privately for the test (its own runtime folder and socket), so it works as root in
CI with no sound card; the test is skipped only when pulseaudio or PortAudio is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from media_factory import write_video
from viml.desktop.audition import AuditionEngine, PlayerClock
from viml.desktop.player import ClipPlayer

if TYPE_CHECKING:
    from collections.abc import Callable


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


def silent_player(qtbot) -> ClipPlayer:
    """A clip player whose picture's own sound goes nowhere: these tests hear only the music stream. Qt's
    PulseAudio client looks for a server once per process; when an earlier test made it look before this
    private server existed, a clip with sound played with stalling position reports (no buffer heard)."""
    player = ClipPlayer()
    qtbot.addWidget(player)
    player.player.setAudioOutput(None)
    return player


def test_music_follows_the_video_clock(qtbot, tmp_path, null_sink):
    """Through a real output stream: each buffer's music is `offset + video - in` for the video position
    the engine read from the player's clock; a seek makes the music jump with the picture, and a pause
    silences it. Only what our code decides is asserted, not how fast this machine plays."""
    assert AuditionEngine.output_available(null_sink) is None
    clip = write_video(tmp_path / "clip.mp4", seconds=8.0, fps=12, with_audio=True)
    player = silent_player(qtbot)
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
    reported = []  # every position the player reported, read on the GUI thread
    player.player.positionChanged.connect(lambda ms: reported.append(ms / 1000.0))

    def heard(low: float, high: float, since: int = 0, count: int = 8) -> Callable[[], bool]:
        return lambda: (
            sum(not np.isnan(r.music_position) and low <= r.video_position < high for r in engine.log[since:])
            >= count
        )

    player.play_range()
    qtbot.waitUntil(heard(1.0, 7.0), timeout=20000)
    # While playing, 2 s on (or back, when a slow start already took the picture past 4 s): the music
    # must jump with the picture. Where the picture is when the music is first heard is the machine's.
    seek_from = player.position()
    seek_to = seek_from + 2.0 if seek_from < 4.0 else seek_from - 2.5
    seeked_at = len(engine.log)
    player.seek(seek_to)
    qtbot.waitUntil(heard(seek_to - 0.1, min(seek_to + 1.5, 7.0), since=seeked_at), timeout=20000)
    player.pause()
    paused_at = len(engine.log)
    qtbot.waitUntil(lambda: any(np.isnan(r.music_position) for r in engine.log[paused_at:]), timeout=10000)
    engine.stop()
    records = list(engine.log)

    playing = [r for r in records if not np.isnan(r.music_position)]
    for record in playing:  # the engine's contract, for every buffer it played
        expected = engine.expected_music_position(record.video_position)
        assert abs(record.music_position - expected) <= engine.tolerance + 1.0 / rate
    # The positions the engine read are the player's: within what it reported (plus extrapolation).
    slack = PlayerClock.MAX_EXTRAPOLATION + PlayerClock.SLEW_LIMIT
    assert min(reported) - slack <= min(r.video_position for r in playing)
    assert max(r.video_position for r in playing) <= max(reported) + slack
    # The seek: one buffer jumps (resynced) from the picture before it to the picture after it, the
    # music alongside by as much.
    jumps = [
        (a, b)
        for a, b in zip(playing, playing[1:], strict=False)
        if abs(a.video_position - seek_from) < 0.5 and abs(b.video_position - seek_to) < 0.5
    ]
    moved = seek_to - seek_from
    assert jumps and all(
        b.resynced and abs((b.music_position - a.music_position) - moved) < 0.5 for a, b in jumps
    )
    # Between resyncs the music is contiguous: buffer after buffer, no gaps or repeats.
    contiguous = 0
    for a, b in zip(records, records[1:], strict=False):
        if not (np.isnan(a.music_position) or np.isnan(b.music_position) or b.resynced):
            assert b.music_position - a.music_position == pytest.approx(a.frames / rate, abs=1e-6)
            contiguous += 1
    assert contiguous >= 10
    # Paused: silence, not the music running on.
    assert np.isnan(records[-1].music_position)


def test_no_device_is_reported_not_raised():
    reason = AuditionEngine.output_available("no-such-device-xyz")
    assert reason is not None and "no audio output device" in reason


def test_audition_stops_or_loops_at_the_out_point(qtbot, tmp_path, null_sink):
    """Through the null sink: stopping (the default) halts the picture at the out point, parks it at the
    in point and plays no music past out; looping goes back to in, the music following at once, pass
    after pass; an out point at the clip's very end stops too."""
    clip = write_video(tmp_path / "clip.mp4", seconds=4.0, fps=12)
    player = silent_player(qtbot)
    with qtbot.waitSignal(player.rangeChanged, timeout=5000):
        player.open(clip)
    qtbot.waitUntil(lambda: player.fps is not None, timeout=5000)
    player.set_range(1.0, 2.5)
    rate = 48000
    music = np.sin(2 * np.pi * 220 * np.arange(10 * rate) / rate).astype(np.float32) * 0.2
    engine = AuditionEngine(player.clock, device=null_sink, sample_rate=rate)
    engine.load(music, rate, music_start=0.0, offset=3.0, clip_in=1.0, clip_out=2.5)

    def parked_at(seconds: float) -> Callable[[], bool]:
        return lambda: not player.playing and player.frame_at(player.position()) == player.frame_at(seconds)

    engine.start()
    assert not player.loop  # the default: stop
    with qtbot.waitSignal(player.rangeFinished, timeout=20000):
        player.play_range()
    assert not player.range_playing
    qtbot.waitUntil(parked_at(1.0), timeout=5000)
    played = [r for r in engine.log if not np.isnan(r.music_position)]
    assert played and all(r.video_position < 2.5 for r in played)
    # The music's out is offset + length (a buffer runs ahead of the picture by the tolerance at most).
    assert max(r.music_position for r in played) < 3.0 + (2.5 - 1.0) + engine.tolerance

    engine.log.clear()
    finished = []
    player.rangeFinished.connect(lambda: finished.append(True))
    player.play_range(loop=True)

    def loops() -> int:  # the picture (and with it the music) jumped back from near out to near in
        records = [r for r in engine.log if not np.isnan(r.music_position)]
        return sum(
            a.video_position > 2.0 > b.video_position for a, b in zip(records, records[1:], strict=False)
        )

    qtbot.waitUntil(lambda: loops() >= 2, timeout=30000)
    assert player.range_playing and not finished
    for record in (r for r in engine.log if not np.isnan(r.music_position)):
        assert 1.0 - 0.2 <= record.video_position < 2.5
        expected = engine.expected_music_position(record.video_position)
        assert abs(record.music_position - expected) <= engine.tolerance + 1.0 / rate
    player.end_range()
    qtbot.waitUntil(parked_at(1.0), timeout=5000)

    player.set_range(3.0, player.duration)  # out at the clip's end: the player stops there by itself
    with qtbot.waitSignal(player.rangeFinished, timeout=20000):
        player.play_range(loop=False)
    qtbot.waitUntil(parked_at(3.0), timeout=5000)
    engine.stop()


def test_the_listed_outputs_open_by_their_stored_name(qtbot, null_sink):
    """The real PortAudio list (with the private server up): each output's stored name ("device, host
    API") opens exactly that device, so a choice kept in the settings plays through it."""
    from viml.desktop.audition import output_devices
    from viml.desktop.settings import AppSettings

    devices = output_devices()
    pulse = [d for d in devices if d.name.split(",")[0] == null_sink]
    assert pulse, [d.name for d in devices]
    settings = AppSettings()
    settings.audio_device = pulse[0].name
    engine = AuditionEngine(PlayerClock(), device=AppSettings().audio_device)
    assert engine.device == pulse[0].name and AuditionEngine.output_available(engine.device) is None
    engine.load(np.zeros(4800, np.float32), 48000, 0.0, 0.0, 0.0)
    engine.start()
    qtbot.waitUntil(lambda: len(engine.log) > 0, timeout=10000)  # its callback runs: the device plays
    engine.stop()
