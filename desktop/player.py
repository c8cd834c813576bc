"""The clip player: video with an in/out timeline, timecode and an editor's transport keys.

Frames come from a QVideoSink and are painted by `VideoView` itself (a QVideoWidget paints through the
GPU path, which offscreen screenshots and `grab()` cannot see). The player also publishes its position
into a `PlayerClock`, the master clock the music audition follows.

The keys (Space, J/K/L, I/O, arrows, Home/End; desktop/transport.py) work wherever the focus is in the
player's window. Frame steps use the clip's own frame rate, probed off the GUI thread; a frame is shown
by seeking to its middle (Qt's FFmpeg backend shows the previous frame at a frame's exact start time).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from PySide6.QtCore import QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer, QtAudio, QVideoFrame, QVideoSink
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget
from viml.desktop import workers
from viml.desktop.audition import PlayerClock
from viml.desktop.style import ACCENT, eliding_label, format_timecode
from viml.desktop.transport import TransportKeys

log = logging.getLogger(__name__)

FALLBACK_FPS = 25.0  # frame steps before the clip's own rate is known, or for a file without one
KEYS_HINT = "Space play · J/K/L · I/O · ←/→ frame · Home/End"
KEYS_HELP = (
    "Space play/pause · J back (1, 2, 4 s) · K pause · L play, faster on each press\n"
    "I / O set the in / out point at the playhead · Home / End go to the in / out point\n"
    "← / → one frame · Shift+← / Shift+→ one second · Enter audition · Esc stop\n"
    "The keys work wherever the focus is, except while typing in a text field."
)


class VideoView(QWidget):
    """Paints the latest frame of its video sink, letterboxed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self.image = QImage()
        self.placeholder = "Drop a video here, or File ▸ Open video… (Ctrl+O)"
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def _on_frame(self, frame: QVideoFrame) -> None:
        if frame.isValid():
            self.image = frame.toImage()
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#111"))
        if self.image.isNull():
            painter.setPen(QColor("#aaa"))
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.placeholder)
            return
        size = self.image.size().scaled(self.size(), Qt.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        painter.drawImage(QRectF(x, y, size.width(), size.height()), self.image)


class TimelineWidget(QWidget):
    """Duration bar with the in/out range and the playhead; click or drag to seek."""

    seekRequested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.duration = 0.0
        self.position = 0.0
        self.in_point = 0.0
        self.out_point = 0.0
        self.setMinimumHeight(28)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Click to seek. I / O set the in and out points at the playhead.")

    def _x(self, seconds: float) -> float:
        return 6 + (self.width() - 12) * (seconds / self.duration if self.duration > 0 else 0.0)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        bar = QRectF(6, 9, self.width() - 12, 10)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor("#3a3a3a"))
        painter.drawRoundedRect(bar, 3, 3)
        if self.duration > 0:
            selected = QRectF(self._x(self.in_point), 7, self._x(self.out_point) - self._x(self.in_point), 14)
            painter.setBrush(QColor(ACCENT))
            painter.drawRect(selected)
            painter.setPen(QColor("#f5f5f5"))
            x = self._x(self.position)
            painter.drawLine(int(x), 2, int(x), self.height() - 2)

    def _seek(self, event: QMouseEvent) -> None:
        if self.duration > 0:
            fraction = (event.position().x() - 6) / max(self.width() - 12, 1)
            self.seekRequested.emit(min(max(fraction, 0.0), 1.0) * self.duration)

    mousePressEvent = _seek
    mouseMoveEvent = _seek


class ClipPlayer(QWidget):
    """Video player with in/out points. Times are seconds (floats) everywhere outside Qt."""

    rangeChanged = Signal(float, float)
    clipOpened = Signal(str)
    failed = Signal(str)
    frameRateKnown = Signal(float)
    rangeFinished = Signal()  # range playback reached the out point and stopped there (not looping)
    loopChanged = Signal(bool)
    volumeChanged = Signal(float)  # the preview volume slider, 0..1

    SHUTTLE_RATES = (1.0, 2.0, 4.0)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.fps: float | None = None  # the clip's frame rate, once probed
        self.clock = PlayerClock()
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
        self.view = VideoView(self)
        self.player.setVideoSink(self.view.sink)
        self.view.sink.videoFrameChanged.connect(self._check_frame)
        self.timeline = TimelineWidget(self)
        self.times = QLabel("--:--", self)
        self.times.setObjectName("clipTimes")
        self.in_point = 0.0
        self.out_point = 0.0
        self.loop = False  # range playback at the out point: back to in (True) or stop and park at in
        self.range_playing = False
        self.volume_gain = 1.0  # linear gain of the preview volume (the music's and the clip's sound)
        self._shuttle = 0
        self._back_steps = 0
        self._music_playing = False
        self._loading = False  # a file is opening: park once more when it has loaded
        self._seek_target: float | None = None  # see `playhead`
        self._parked_at: float | None = None
        self._looped_back = False  # a loop went back to in; the player has not reported it yet
        self._reseeks = 0
        self._shown_span = (0.0, 0.0)  # start and end time of the frame on screen
        self._verify = QTimer(self, singleShot=True, interval=250)
        self._verify.timeout.connect(self._check_frame)
        self.duck_level = 0.0  # video's own audio while music auditions: 0 = muted

        self.loop_box = QCheckBox("Loop", self)
        self.loop_box.setToolTip("Audition: at the out point go back to the in point (else stop there)")
        self.volume = QSlider(Qt.Horizontal, self, minimum=0, maximum=100, value=100)
        self.volume.setToolTip("Preview volume (the music and the clip's sound)")
        self.volume.setMaximumWidth(110)
        keys = eliding_label(self)
        keys.setText(KEYS_HINT)
        keys.setToolTip(KEYS_HELP)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.timeline)
        row = QHBoxLayout()
        row.addWidget(self.times)
        row.addWidget(keys, 1)
        row.addWidget(self.loop_box)
        row.addWidget(QLabel("Volume", self))
        row.addWidget(self.volume)
        layout.addLayout(row)

        self.setFocusPolicy(Qt.StrongFocus)
        self.keys = TransportKeys(self)
        self._bind_keys()
        self.timeline.seekRequested.connect(self.seek)
        self.player.positionChanged.connect(self._on_position)
        self.player.durationChanged.connect(self._on_duration)
        self.player.playbackStateChanged.connect(lambda _state: self._publish_clock())
        self.player.mediaStatusChanged.connect(self._on_media_status)
        self.player.errorOccurred.connect(self._on_error)
        self.loop_box.toggled.connect(self.set_loop)
        self.volume.valueChanged.connect(lambda value: self.set_volume(value / 100.0))

    def _bind_keys(self) -> None:
        bind = self.keys.bind
        bind(Qt.Key_Space, self.toggle_play)
        bind(Qt.Key_K, self.pause)
        bind(Qt.Key_L, self.shuttle_forward)
        bind(Qt.Key_J, self.shuttle_back, repeat=True)
        bind(Qt.Key_I, self.mark_in)
        bind(Qt.Key_O, self.mark_out)
        bind(Qt.Key_Left, lambda: self.step_frames(-1), repeat=True)
        bind(Qt.Key_Right, lambda: self.step_frames(1), repeat=True)
        bind(Qt.Key_Left, lambda: self.step_seconds(-1.0), Qt.ShiftModifier, repeat=True)
        bind(Qt.Key_Right, lambda: self.step_seconds(1.0), Qt.ShiftModifier, repeat=True)
        bind(Qt.Key_Home, self.go_to_in)
        bind(Qt.Key_End, self.go_to_out)

    # -- opening and range ------------------------------------------------------------------------
    def open(self, path: str | Path, in_point: float | None = None, out_point: float | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            self.failed.emit(f"{path}: file not found")
            return
        source = QUrl.fromLocalFile(str(path.resolve()))
        self.range_playing = False
        if source == self.player.source() and self.duration > 0:
            # The same file again (another clip of one source in a timeline): Qt loads nothing and
            # reports no duration, so the new range applies now.
            self.path = path
            self.pause()
            self.set_range(in_point or 0.0, out_point if out_point is not None else self.duration)
            self.park()
            self.clipOpened.emit(str(path))
            return
        self.path = path
        self.fps = None
        self.in_point, self.out_point = 0.0, 0.0
        self._pending_range = (in_point, out_point)
        self._loading = True
        self.player.setSource(source)
        self.player.pause()  # loads and shows the first frame without playing
        self._probe_frame_rate(path)
        self.clipOpened.emit(str(path))

    def _probe_frame_rate(self, path: Path) -> None:
        """The clip's frame rate as the exported timeline has it (the measured average snapped to the
        rate editors know: 11.9991 -> 12, 23.976.. -> 24000/1001), on the thread pool (it opens the file)."""

        def probe(_token) -> tuple[Path, float]:
            from viml.catalog.otio_export import video_timing

            return path, float(video_timing(path).rate)

        task = workers.Task(probe)
        task.signals.result.connect(self._frame_rate_probed)  # a bound slot: none after the player goes
        task.signals.error.connect(lambda message: log.info("no frame rate for %s: %s", path, message))
        workers.start_held(task)

    def _frame_rate_probed(self, probed: tuple[Path, float]) -> None:
        path, fps = probed
        if path != self.path or not fps or not math.isfinite(fps) or fps <= 0:
            return  # another clip since, or a stream without a rate: frame steps use FALLBACK_FPS
        self.fps = float(fps)
        self.times.setToolTip(f"Timecode at the clip's {self.fps:g} frames per second")
        if not self.playing and self.playhead() == self._parked_at:
            self.park()  # the in point's frame, now that frames are known (unless the user moved on)
        self._show_times()
        self.frameRateKnown.emit(self.fps)

    def _on_duration(self, milliseconds: int) -> None:
        duration = milliseconds / 1000.0
        self.timeline.duration = duration
        wanted_in, wanted_out = getattr(self, "_pending_range", (None, None))
        self._pending_range = (None, None)
        self.set_range(wanted_in or 0.0, wanted_out if wanted_out is not None else duration)
        self.park()  # a clip opens at its in point

    @property
    def duration(self) -> float:
        return self.timeline.duration

    @property
    def playing(self) -> bool:
        return self.player.playbackState() == QMediaPlayer.PlayingState

    def set_range(self, in_point: float, out_point: float) -> None:
        """Set in and out; a new in point parks the playhead there unless the clip is playing (marking
        on the fly must not jump the picture)."""
        duration = self.duration
        in_point = min(max(in_point, 0.0), duration)
        out_point = min(max(out_point, 0.0), duration)
        if out_point <= in_point:  # setting one point past the other moves the other along
            out_point = duration if in_point < duration else in_point
        moved_in = in_point != self.in_point
        self.in_point, self.out_point = in_point, out_point
        self.timeline.in_point, self.timeline.out_point = in_point, out_point
        self.timeline.update()
        if moved_in and not self.playing:
            self.park()
        self._show_times()
        self.rangeChanged.emit(in_point, out_point)

    def mark_in(self) -> None:
        position = self.playhead()
        self.set_range(position, self.out_point if self.out_point > position else self.duration)

    def mark_out(self) -> None:
        position = self.playhead()
        self.set_range(self.in_point if self.in_point < position else 0.0, position)

    # -- frames -----------------------------------------------------------------------------------
    @property
    def frame_rate(self) -> float:
        return self.fps or FALLBACK_FPS

    @property
    def last_frame(self) -> int:
        return max(math.ceil(self.duration * self.frame_rate - 1e-6) - 1, 0)

    def frame_at(self, seconds: float) -> int:
        """The frame shown at `seconds` (frame n spans [n/fps, (n+1)/fps)), within the clip."""
        return min(max(math.floor(seconds * self.frame_rate + 1e-6), 0), self.last_frame)

    def seek_frame(self, frame: int) -> None:
        frame = min(max(frame, 0), self.last_frame)
        self.seek((frame + 0.5) / self.frame_rate)  # a frame's middle: see the module docstring

    def step_frames(self, frames: int) -> None:
        """One frame back or on (← / →); the picture stops, as in editors."""
        self.pause()
        self.seek_frame(self.frame_at(self.playhead()) + frames)

    def step_seconds(self, seconds: float) -> None:
        self.pause()
        self.seek_frame(self.frame_at(self.playhead() + seconds))

    def park(self) -> None:
        """The playhead on the in point's frame."""
        if self.path is not None:
            self.seek_frame(self.frame_at(self.in_point))
            self._parked_at = self._seek_target

    def go_to_in(self) -> None:
        self.pause()
        self.park()

    def go_to_out(self) -> None:
        self.pause()
        self.seek_frame(self.frame_at(self.out_point))

    # -- transport --------------------------------------------------------------------------------
    def position(self) -> float:
        return self.player.position() / 1000.0

    def playhead(self) -> float:
        """Where the transport is: while paused, where the last seek sent it (a report from before the
        pause can still arrive after that seek, and a quick →, I or J must not act on it), else the
        player's position."""
        if self._seek_target is not None and not self.playing:
            return self._seek_target
        return self.position()

    def seek(self, seconds: float) -> None:
        milliseconds = int(round(seconds * 1000))
        self.player.setPosition(milliseconds)
        self._seek_target = milliseconds / 1000.0
        self._reseeks = 0
        if not self.playing:
            self._verify.start()  # restarts: checked once the seeks stop coming
        self._publish_clock()
        self._show_times()

    def play(self) -> None:
        self._seek_target = None
        self.player.setPlaybackRate(1.0)
        self.player.play()

    def pause(self) -> None:
        self._shuttle = 0
        if self.playing:
            self._seek_target = None  # a seek made while playing is not where the picture stops
        self.player.pause()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play_range(self, loop: bool | None = None) -> None:
        """Play in–out from the in point (audition); at the out point go back to in when `loop`, else
        stop, park at in and emit `rangeFinished`. `loop` None keeps the Loop box's choice."""
        if loop is not None:
            self.set_loop(loop)
        self.range_playing, self._looped_back = True, False
        self.park()
        self.play()

    def end_range(self) -> None:
        """Stop range playback (the audition ended): pause and park at the in point."""
        self.range_playing = False
        if self.path is not None:
            self.pause()
            self.park()

    def set_loop(self, loop: bool) -> None:
        loop = bool(loop)
        changed = loop != self.loop
        self.loop = loop
        if self.loop_box.isChecked() != loop:
            self.loop_box.setChecked(loop)
        if changed:
            self.loopChanged.emit(loop)

    def shuttle_forward(self) -> None:
        # Like editors: each L press goes faster (1×, 2×, 4×).
        self._back_steps = 0
        if self.playing:
            self._shuttle = min(self._shuttle + 1, len(self.SHUTTLE_RATES) - 1)
        else:
            self._shuttle = 0
        self._seek_target = None
        self.player.setPlaybackRate(self.SHUTTLE_RATES[self._shuttle])
        self.player.play()
        self._publish_clock()

    def shuttle_back(self) -> None:
        # Qt's FFmpeg backend cannot play backwards: J steps back 1 s, 2 s, 4 s on repeated presses.
        self.pause()
        self._back_steps = min(self._back_steps + 1, 3)
        self.seek(max(self.playhead() - 2 ** (self._back_steps - 1), 0.0))

    # -- sound ------------------------------------------------------------------------------------
    def set_volume(self, fraction: float) -> None:
        """The preview volume from a slider position (0..1), on a logarithmic taper as Qt advises for
        volume sliders; `volume_gain` is the linear gain the music audition applies too."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.volume.value() != round(fraction * 100):
            self.volume.setValue(round(fraction * 100))  # comes back here through valueChanged
            return
        self.volume_gain = QtAudio.convertVolume(
            fraction, QtAudio.VolumeScale.LogarithmicVolumeScale, QtAudio.VolumeScale.LinearVolumeScale
        )
        self._apply_volume()
        self.volumeChanged.emit(fraction)

    def set_duck(self, music_playing: bool) -> None:
        self._music_playing = music_playing
        self._apply_volume()

    def _apply_volume(self) -> None:
        self.audio.setVolume(self.volume_gain * (self.duck_level if self._music_playing else 1.0))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        super().mousePressEvent(event)

    # -- internals --------------------------------------------------------------------------------
    def _publish_clock(self) -> None:
        self.clock.update(self.position(), self.playing, self.player.playbackRate())

    def _on_position(self, milliseconds: int) -> None:
        self.timeline.position = milliseconds / 1000.0
        self.timeline.update()
        self._publish_clock()
        self._show_times()
        past_out = milliseconds / 1000.0 >= self.out_point - 1e-3
        if self._looped_back:  # reports from before the jump back still come: one seek per pass
            self._looped_back = past_out
        elif self.range_playing and self.playing and past_out:
            self._at_out_point()

    def _check_frame(self, frame: QVideoFrame | None = None) -> None:
        """Paused, the frame shown must be the playhead's. Qt's FFmpeg backend, given seeks in quick
        succession on a busy machine, has shown a neighbour instead, or no new frame for the last seek:
        seek there again (twice at most), on the frame that came or, without one, shortly after."""
        if frame is not None and frame.isValid():
            self._shown_span = (frame.startTime() / 1e6, frame.endTime() / 1e6)
        target, (start, end) = self._seek_target, self._shown_span
        if target is None or self.playing or self._reseeks >= 2 or not end > start:
            return
        if not start - 1e-3 <= target < end + 1e-3:
            self._reseeks += 1
            self.player.setPosition(int(round(target * 1000)))
            self._verify.start()

    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.LoadedMedia and self._loading:
            # Once per opened file: a seek made while it was still loading (on its duration) can be lost.
            self._loading = False
            if not self.playing:
                self.park()
        elif status == QMediaPlayer.EndOfMedia and self.range_playing:
            self._at_out_point()  # an out point at the clip's end: the player stops before reporting it

    def _at_out_point(self) -> None:
        if self.loop:
            self.park()  # the music follows the clock back (AuditionEngine resyncs on the jump)
            self._looped_back = True
            if not self.playing:
                self.play()
            return
        self.range_playing = False
        self.pause()
        self.park()
        self.rangeFinished.emit()

    def _show_times(self) -> None:
        fps = self.fps
        self.times.setText(
            f"{format_timecode(self.playhead(), fps)}   in {format_timecode(self.in_point, fps)}   "
            f"out {format_timecode(self.out_point, fps)}   ({self.out_point - self.in_point:.2f} s)"
        )

    def _on_error(self, _error, message: str) -> None:
        self.failed.emit(f"{self.path}: {message or 'cannot play this file'}")
