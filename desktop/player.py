"""The clip player: video with an in/out timeline and editor keys (I, O, space, J/K/L).

Frames come from a QVideoSink and are painted by `VideoView` itself (a QVideoWidget paints through the
GPU path, which offscreen screenshots and `grab()` cannot see). The player also publishes its position
into a `PlayerClock`, the master clock the music audition follows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer, QVideoFrame, QVideoSink
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget
from viml.desktop.audition import PlayerClock
from viml.desktop.style import ACCENT, format_time


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

    SHUTTLE_RATES = (1.0, 2.0, 4.0)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.clock = PlayerClock()
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
        self.view = VideoView(self)
        self.player.setVideoSink(self.view.sink)
        self.timeline = TimelineWidget(self)
        self.times = QLabel("--:--", self)
        self.times.setObjectName("clipTimes")
        self.in_point = 0.0
        self.out_point = 0.0
        self._shuttle = 0
        self._back_steps = 0
        self.duck_level = 0.0  # video's own audio while music auditions: 0 = muted

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.timeline)
        row = QHBoxLayout()
        keys = QLabel("Space play · J/K/L shuttle · I/O in/out", self)
        keys.setObjectName("hint")
        row.addWidget(self.times)
        row.addStretch(1)
        row.addWidget(keys)
        layout.addLayout(row)

        self.setFocusPolicy(Qt.StrongFocus)
        self.timeline.seekRequested.connect(self.seek)
        self.player.positionChanged.connect(self._on_position)
        self.player.durationChanged.connect(self._on_duration)
        self.player.playbackStateChanged.connect(lambda _state: self._publish_clock())
        self.player.errorOccurred.connect(self._on_error)

    # -- opening and range ------------------------------------------------------------------------
    def open(self, path: str | Path, in_point: float | None = None, out_point: float | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            self.failed.emit(f"{path}: file not found")
            return
        self.path = path
        self.in_point, self.out_point = 0.0, 0.0
        self._pending_range = (in_point, out_point)
        self.player.setSource(QUrl.fromLocalFile(str(path.resolve())))
        self.player.pause()  # loads and shows the first frame without playing
        self.clipOpened.emit(str(path))

    def _on_duration(self, milliseconds: int) -> None:
        duration = milliseconds / 1000.0
        self.timeline.duration = duration
        wanted_in, wanted_out = getattr(self, "_pending_range", (None, None))
        self._pending_range = (None, None)
        self.set_range(wanted_in or 0.0, wanted_out if wanted_out is not None else duration)

    @property
    def duration(self) -> float:
        return self.timeline.duration

    def set_range(self, in_point: float, out_point: float) -> None:
        duration = self.duration
        in_point = min(max(in_point, 0.0), duration)
        out_point = min(max(out_point, 0.0), duration)
        if out_point <= in_point:  # setting one point past the other moves the other along
            out_point = duration if in_point < duration else in_point
        self.in_point, self.out_point = in_point, out_point
        self.timeline.in_point, self.timeline.out_point = in_point, out_point
        self.timeline.update()
        self._show_times()
        self.rangeChanged.emit(in_point, out_point)

    def mark_in(self) -> None:
        position = self.position()
        self.set_range(position, self.out_point if self.out_point > position else self.duration)

    def mark_out(self) -> None:
        position = self.position()
        self.set_range(self.in_point if self.in_point < position else 0.0, position)

    # -- transport --------------------------------------------------------------------------------
    def position(self) -> float:
        return self.player.position() / 1000.0

    def seek(self, seconds: float) -> None:
        self.player.setPosition(int(round(seconds * 1000)))
        self._publish_clock()

    def play(self) -> None:
        self.player.setPlaybackRate(1.0)
        self.player.play()

    def pause(self) -> None:
        self._shuttle = 0
        self.player.pause()

    def toggle_play(self) -> None:
        if self.player.playbackState() == QMediaPlayer.PlayingState:
            self.pause()
        else:
            self.play()

    def play_range(self) -> None:
        """Play from the in point (used by audition)."""
        self.seek(self.in_point)
        self.play()

    def shuttle_forward(self) -> None:
        # Like editors: each L press goes faster (1×, 2×, 4×).
        self._back_steps = 0
        if self.player.playbackState() == QMediaPlayer.PlayingState:
            self._shuttle = min(self._shuttle + 1, len(self.SHUTTLE_RATES) - 1)
        else:
            self._shuttle = 0
        self.player.setPlaybackRate(self.SHUTTLE_RATES[self._shuttle])
        self.player.play()
        self._publish_clock()

    def shuttle_back(self) -> None:
        # Qt's FFmpeg backend cannot play backwards: J steps back 1 s, 2 s, 4 s on repeated presses.
        self.pause()
        self._back_steps = min(self._back_steps + 1, 3)
        self.seek(max(self.position() - 2 ** (self._back_steps - 1), 0.0))

    def set_duck(self, music_playing: bool) -> None:
        self.audio.setVolume(self.duck_level if music_playing else 1.0)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        actions = {
            Qt.Key_I: self.mark_in,
            Qt.Key_O: self.mark_out,
            Qt.Key_Space: self.toggle_play,
            Qt.Key_K: self.pause,
            Qt.Key_L: self.shuttle_forward,
            Qt.Key_J: self.shuttle_back,
        }
        action = actions.get(event.key())
        if action is None or event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            super().keyPressEvent(event)
            return
        action()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        super().mousePressEvent(event)

    # -- internals --------------------------------------------------------------------------------
    def _publish_clock(self) -> None:
        playing = self.player.playbackState() == QMediaPlayer.PlayingState
        self.clock.update(self.position(), playing, self.player.playbackRate())

    def _on_position(self, milliseconds: int) -> None:
        self.timeline.position = milliseconds / 1000.0
        self.timeline.update()
        self._publish_clock()
        self._show_times()

    def _show_times(self) -> None:
        self.times.setText(
            f"{format_time(self.position())}   in {format_time(self.in_point)}   "
            f"out {format_time(self.out_point)}   ({self.out_point - self.in_point:.1f} s)"
        )

    def _on_error(self, _error, message: str) -> None:
        self.failed.emit(f"{self.path}: {message or 'cannot play this file'}")
