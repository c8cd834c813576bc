"""The editor's transport in a real Qt application offscreen (issue 16): the keys wherever focus is in the
window but not while typing, frame steps of one frame at the clip's own rate on a generated clip whose
frames carry their index, timecode, the playhead parked at the in point, Enter/Esc audition, the preview
volume and loudness matching in the audio callback, and the output device setting."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from media_factory import read_frame_index, write_audio, write_video
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QSpinBox, QVBoxLayout, QWidget
from viml.catalog.excerpts import Excerpt
from viml.desktop.audition import AuditionEngine, NowPlaying, PlayerClock, matched_gain, stored_loudness
from viml.desktop.player import ClipPlayer
from viml.desktop.style import format_timecode
from viml.desktop.transport import TransportKeys, is_typing

FPS = 12  # not the 25 the player assumes before probing: a step of 1/25 s would show here


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", seconds=4.0, fps=FPS, size=(64, 48))


def shown_frame(player: ClipPlayer) -> int:
    image = player.view.image.convertToFormat(player.view.image.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return read_frame_index(rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3))


def open_clip(qtbot, player: ClipPlayer, clip, *range_) -> None:
    player.open(clip, *range_)
    qtbot.waitUntil(lambda: player.fps is not None and player.duration > 0, timeout=10000)
    qtbot.waitUntil(lambda: not player.view.image.isNull(), timeout=5000)


def showing(qtbot, player: ClipPlayer, frame: int) -> None:
    try:
        qtbot.waitUntil(lambda: shown_frame(player) == frame, timeout=5000)
    except qtbot.TimeoutError:
        state = (shown_frame(player), player.position(), player.playhead(), player.playing)
        raise AssertionError(
            f"frame {frame} not shown: (shown, position, playhead, playing) {state}"
        ) from None


def test_timecode_counts_frames_at_the_clip_rate():
    assert format_timecode(0.0, 25) == "00:00:00:00"
    assert format_timecode(3661.0 + 7 / 25, 25) == "01:01:01:07"
    assert format_timecode(1.0 - 1e-3, 12) == "00:00:00:11"
    assert format_timecode(12 / 12, 12) == "00:00:01:00"  # a frame's own start is that frame
    assert format_timecode(60.0, 30000 / 1001) == "00:00:59:28"  # non-drop: 1798 frames at base 30
    assert format_timecode(1.5, None) == "0:01.5"  # no rate known: seconds


def test_frame_steps_are_one_frame_of_the_clip_and_home_end_go_to_in_out(qtbot, clip):
    player = ClipPlayer()
    qtbot.addWidget(player)
    player.show()
    open_clip(qtbot, player, clip, 1.0, 3.0)
    assert player.fps == pytest.approx(FPS)
    # Opened parked at the in point: frame 12 (1.0 s at 12 fps), timecode in the clip's frames.
    showing(qtbot, player, 12)
    assert player.times.text().startswith("00:00:01:00   in 00:00:01:00   out 00:00:03:00")

    start = player.position()
    qtbot.keyClick(player, Qt.Key_Right)
    showing(qtbot, player, 13)
    assert player.position() - start == pytest.approx(1 / FPS, abs=0.0015)  # ms positions
    for _ in range(3):
        qtbot.keyClick(player, Qt.Key_Left)
    showing(qtbot, player, 10)
    assert player.times.text().startswith("00:00:00:10")
    qtbot.keyClick(player, Qt.Key_Right, Qt.ShiftModifier)  # one second: 12 frames
    showing(qtbot, player, 22)
    qtbot.keyClick(player, Qt.Key_Left, Qt.ShiftModifier)
    showing(qtbot, player, 10)
    qtbot.keyClick(player, Qt.Key_End)
    showing(qtbot, player, 36)  # the out point's frame
    qtbot.keyClick(player, Qt.Key_Home)
    showing(qtbot, player, 12)
    for _ in range(20):  # never before the first frame
        qtbot.keyClick(player, Qt.Key_Left)
    showing(qtbot, player, 0)

    # A new in point parks the playhead on it; I at a stepped frame is exactly that frame.
    player.set_range(2.0, 3.0)
    showing(qtbot, player, 24)
    qtbot.keyClick(player, Qt.Key_Right)
    qtbot.keyClick(player, Qt.Key_I)
    assert player.frame_at(player.in_point) == 25
    qtbot.keyClick(player, Qt.Key_End)
    qtbot.keyClick(player, Qt.Key_Home)
    showing(qtbot, player, 25)


def test_the_same_file_again_opens_at_its_new_range(qtbot, clip):
    """Two clips of one source file (a timeline's): Qt reloads nothing for the same file and reports no
    duration, so the second range must apply at once (it stayed 0-0 before, and no query ran)."""
    player = ClipPlayer()
    qtbot.addWidget(player)
    open_clip(qtbot, player, clip, 1.0, 3.0)
    showing(qtbot, player, 12)
    player.open(clip, 2.0, 3.5)
    assert (player.in_point, player.out_point) == (2.0, 3.5)
    showing(qtbot, player, 24)


def make_window(qtbot, tmp_path):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(tmp_path / "catalog.sqlite")
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(window.is_idle, timeout=20000)
    return window


def focus(qtbot, widget: QWidget) -> QWidget:
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=3000)
    return widget


def test_keys_work_wherever_focus_is_except_while_typing(qtbot, tmp_path, clip):
    from viml.desktop.results import Suggestion

    window = make_window(qtbot, tmp_path)
    player = window.player
    window.open_video(str(clip), 1.0, 3.0)
    qtbot.waitUntil(lambda: player.fps is not None and player.out_point == 3.0, timeout=10000)
    qtbot.waitUntil(window.is_idle, timeout=20000)
    for target in (window.results, window.library, player):
        focus(qtbot, target)
        qtbot.keyClick(target, Qt.Key_Space)
        qtbot.waitUntil(lambda: player.playing, timeout=3000)
        qtbot.keyClick(target, Qt.Key_K)
        qtbot.waitUntil(lambda: not player.playing, timeout=3000)
        qtbot.keyClick(target, Qt.Key_Home)
        showing(qtbot, player, 12)
        qtbot.keyClick(target, Qt.Key_Right)
        showing(qtbot, player, 13)
        assert QApplication.focusWidget() is target  # the keys did not move the focus either

    # Typing: the prompt gets the keys, the player does not move.
    prompt = focus(qtbot, window.prompt)
    qtbot.keyClicks(prompt, "calm")
    qtbot.keyClick(prompt, Qt.Key_Space)
    qtbot.keyClick(prompt, Qt.Key_Left)  # the cursor moves back, no frame step
    qtbot.keyClick(prompt, Qt.Key_I)
    qtbot.keyClick(prompt, Qt.Key_Home)
    qtbot.keyClick(prompt, Qt.Key_Right)
    assert prompt.text() == "calmi "
    assert not player.playing and player.in_point == 1.0
    qtbot.wait(200)
    assert shown_frame(player) == 13

    # As a real key press arrives: at the window (QWindow) first, then at the focused widget; the
    # transport acts once (twice, Space would play and pause again).
    focus(qtbot, window.results)
    QTest.keyClick(window.windowHandle(), Qt.Key_Space)
    qtbot.waitUntil(lambda: player.playing, timeout=3000)
    qtbot.wait(100)
    assert player.playing
    QTest.keyClick(window.windowHandle(), Qt.Key_K)
    qtbot.waitUntil(lambda: not player.playing, timeout=3000)

    # Enter auditions the selected result, Esc stops it and parks at in (no device here: the clip alone).
    music = write_audio(tmp_path / "song.wav", seconds=6.0, sample_rate=22050)
    song = Suggestion(str(music), "Song", 0.9, 0.5, 2.0, 6.0)
    results = focus(qtbot, window.results)
    qtbot.waitUntil(window.is_idle, timeout=20000)  # the typed prompt's query (no catalog: no results)
    window.show_results([song])
    qtbot.keyClick(results, Qt.Key_Return)
    qtbot.waitUntil(lambda: player.range_playing and player.playing, timeout=20000)
    assert "without music" in window.statusBar().currentMessage()
    assert window.now_playing.path == str(music)
    assert 0.5 <= window.now_playing.position() <= 0.5 + 2.0  # offset + (video - in), within in-out
    shown = []  # what the results' marker is told (the waveform delegate paints it)
    window.results_model.set_now_playing = lambda row, seconds: shown.append((row, seconds))
    window.show_results([song])  # new results: the marker follows the track
    assert shown and shown[-1][0] == 0 and 0.5 <= shown[-1][1] <= 2.5
    qtbot.keyClick(results, Qt.Key_Escape)
    assert not player.range_playing and not player.playing and window.now_playing.path is None
    assert shown[-1][0] is None  # the marker goes
    showing(qtbot, player, 12)
    qtbot.waitUntil(window.is_idle, timeout=20000)
    window.close()


def test_now_playing_follows_the_clock(qtbot):
    clock = PlayerClock()
    marker = NowPlaying(clock)
    moves = []
    marker.moved.connect(lambda path, seconds: moves.append((path, seconds)))
    clock.update(1.5, playing=False)
    marker.begin("/music/a.wav", lambda seconds: 30.0 + seconds, clip_in=1.0, clip_out=3.0)
    assert moves == [("/music/a.wav", 30.5)]
    marker.tick()  # paused: nothing new to paint
    assert len(moves) == 1
    clock.update(5.0, playing=False)  # past the out point: held at the music's out
    marker.tick()
    assert moves[-1] == ("/music/a.wav", 32.0)
    marker.end()
    assert moves[-1][0] == "" and np.isnan(moves[-1][1]) and marker.path is None
    # A fitted edit that cut out the bars from 31 s to 40 s: the marker jumps with the music.
    fitted = Excerpt(Path("/cache/a.wav"), True, "", 30.0, 2.0, spans=((30.0, 31.0), (40.0, 41.0)))
    clock.update(1.5, playing=False)
    marker.begin("/music/a.wav", fitted.source_time, clip_in=1.0, clip_out=3.0)
    clock.update(2.5, playing=False)
    marker.tick()
    assert [seconds for _, seconds in moves[-2:]] == [30.5, 40.5]


def test_text_fields_and_other_windows_keep_their_keys(qtbot):
    anchor = QWidget()
    qtbot.addWidget(anchor)
    layout = QVBoxLayout(anchor)
    line, spin, read_only = QLineEdit(), QSpinBox(), QLineEdit("notes", readOnly=True)
    for widget in (line, spin, read_only):
        layout.addWidget(widget)
    other = QWidget()  # another window: a dialog's keys are its own
    qtbot.addWidget(other)
    pressed = []
    keys = TransportKeys(anchor)
    keys.bind(Qt.Key_Space, lambda: pressed.append("space"))
    keys.bind(Qt.Key_Right, lambda: pressed.append("shift+right"), Qt.ShiftModifier)
    other.show()
    anchor.show()
    anchor.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is anchor, timeout=3000)
    assert is_typing(line) and is_typing(spin) and not is_typing(read_only) and not is_typing(anchor)
    for widget in (line, spin):
        focus(qtbot, widget)
        qtbot.keyClick(widget, Qt.Key_Space)
        qtbot.keyClick(widget, Qt.Key_Right, Qt.ShiftModifier)
    assert pressed == [] and line.text() == " "
    focus(qtbot, read_only)
    qtbot.keyClick(read_only, Qt.Key_Space)
    qtbot.keyClick(read_only, Qt.Key_Right, Qt.ShiftModifier)
    qtbot.keyClick(read_only, Qt.Key_Right)  # not bound without Shift
    qtbot.keyClick(other, Qt.Key_Space)
    assert pressed == ["space", "shift+right"]


def run_callback(engine: AuditionEngine, frames: int = 256) -> np.ndarray:
    """One buffer through the audio callback PortAudio calls (its timing as PortAudio gives it)."""
    out = np.full((frames, 2), np.nan, np.float32)
    engine._callback(out, frames, SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0), None)
    return out


def test_volume_and_loudness_gain_scale_the_samples_and_the_out_point_silences(qtbot):
    clock = PlayerClock()
    engine = AuditionEngine(clock, sample_rate=8000)
    music = np.full((8000 * 4, 2), 0.25, np.float32)
    engine.load(music, 8000, music_start=0.0, offset=0.0, clip_in=0.0, clip_out=2.0, gain=2.0)
    clock.update(1.0, playing=True)
    assert np.all(run_callback(engine) == np.float32(0.5))  # the loudness gain
    player = ClipPlayer()
    qtbot.addWidget(player)
    player.set_volume(0.5)  # the slider's middle, on Qt's logarithmic taper
    assert player.volume.value() == 50 and 0.1 < player.volume_gain < 0.2
    engine.volume = player.volume_gain
    clock.update(1.0, playing=True)
    assert np.allclose(run_callback(engine), 0.5 * player.volume_gain)
    player.set_duck(False)
    assert player.audio.volume() == pytest.approx(player.volume_gain, abs=1e-3)  # the clip's sound too
    clock.update(2.0, playing=True)  # at the out point: silence, also with music left in the buffer
    assert np.all(run_callback(engine) == 0.0) and np.isnan(engine.log[-1].music_position)
    clock.update(0.5, playing=True)  # a loop back to in: the music again, resynced at once
    assert np.allclose(run_callback(engine), 0.5 * player.volume_gain) and engine.log[-1].resynced


def test_unfitted_audition_is_matched_to_the_fitted_loudness(tmp_path):
    from test_desktop_excerpts import catalogue
    from viml.catalog.fitting import FIT_LUFS
    from viml.catalog.store import Catalog
    from viml.engine.music.fit import PEAK_CEILING
    from viml.engine.music.rhythm.loudness import integrated_loudness
    from viml.engine.music.rhythm.types import Beats, Rhythm

    rate = 22050
    tone = (np.sin(2 * np.pi * 330 * np.arange(4 * rate) / rate) * 0.05).astype(np.float32)
    # No stored loudness: the part's own is measured and brought to FIT_LUFS.
    gained = tone * matched_gain(tone, rate, None)
    assert integrated_loudness(gained, rate) == pytest.approx(FIT_LUFS, abs=0.2)
    # The stored loudness decides when there is one (the whole track's, not this part's)...
    assert matched_gain(tone, rate, -26.0) == pytest.approx(10 ** (10 / 20), rel=1e-6)
    # ...and peaks stay under the ceiling: a loud part is not pushed into clipping.
    loud = tone * 16
    assert matched_gain(loud, rate, -40.0) == pytest.approx(PEAK_CEILING / np.abs(loud).max(), rel=1e-6)

    music = write_audio(tmp_path / "song.wav", seconds=2.0, sample_rate=rate)
    db = tmp_path / "catalog.sqlite"
    assert stored_loudness(db, str(music)) is None  # no catalog yet
    with Catalog(db) as catalog:
        rhythm = Rhythm(Beats.empty(), np.zeros(1), -23.5, duration=2.0)
        catalogue(catalog, music, 2.0, rhythm)
    assert stored_loudness(db, str(music)) == pytest.approx(-23.5)
    os.utime(music, ns=(1, 1))  # changed since the scan: its stored loudness no longer holds
    assert stored_loudness(db, str(music)) is None


def test_the_output_device_is_listed_stored_and_used(qtbot, monkeypatch):
    from viml.desktop import audition
    from viml.desktop.dialogs import SettingsDialog
    from viml.desktop.settings import AppSettings

    devices = [
        audition.OutputDevice("default, ALSA", "default (ALSA)", True),
        audition.OutputDevice("USB Audio: Headphones (hw:1,0), ALSA", "USB Audio: Headphones (ALSA)", False),
    ]
    monkeypatch.setattr(audition, "output_devices", lambda: devices)  # the sound cards of this machine
    settings = AppSettings()
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.device.count() == 3, timeout=5000)  # "System default" + the two
    assert dialog.device.itemData(0) is None
    dialog.device.setCurrentIndex(dialog.device.findData(devices[1].name))
    dialog.accept()
    assert settings.audio_device == devices[1].name
    again = SettingsDialog(AppSettings())
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.device.count() == 3, timeout=5000)
    assert again.device.currentData() == devices[1].name
