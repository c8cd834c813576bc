"""Audition: play a suggested piece of music in sync with the video player, through sounddevice.

The video player is the master clock. The GUI thread publishes (monotonic time, video position, rate)
into a `PlayerClock` whenever the player reports its position; the audio callback extrapolates that
clock to the moment its buffer reaches the speaker (PortAudio's DAC time), and reads the music from
`music_offset + (video_position - clip_in)`. Playback stays contiguous while the two agree within
`tolerance`, and jumps to the right place when they do not (seek, pause, a stalled device).

Past the clip's out point the music is silent (the player loops back or stops there; on a loop the
jump back resyncs the music at once). Each buffer is scaled by the load's loudness-matching gain and the
preview volume. Every callback is logged (`log`) so tests and the UI can check what really went out of
the device.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from viml.core.errors import UserFacingError

log = logging.getLogger(__name__)


class AudioUnavailableError(UserFacingError):
    """No audio output could be opened (no PortAudio library, no device, or the device refused)."""


class PlayerClock:
    """The video position as seen from any thread: the last report, extrapolated while playing."""

    SLEW_LIMIT = 0.25  # seconds: a bigger difference is a seek
    SLEW_GAIN = 0.1
    MAX_EXTRAPOLATION = 0.15  # seconds past the last report

    def __init__(self) -> None:
        self._state = (time.monotonic(), 0.0, 0.0)  # replaced whole, so readers never see half an update

    def update(self, position_seconds: float, playing: bool, rate: float = 1.0) -> None:
        now = time.monotonic()
        rate = float(rate) if playing else 0.0
        position = float(position_seconds)
        if rate and rate == self._state[2] and now - self._state[0] <= self.MAX_EXTRAPOLATION:
            # Players report positions in frame-sized steps; while playing steadily, follow the reports
            # gently so the music does not jump on every one, but accept a real seek at once.
            predicted = self.position_at(now)
            if abs(position - predicted) < self.SLEW_LIMIT:
                position = predicted + self.SLEW_GAIN * (position - predicted)
        self._state = (now, position, rate)

    def position_at(self, monotonic_time: float) -> float:
        stamp, position, rate = self._state
        # A player that stops reporting has stalled (decoding behind, buffering): hold, do not run away.
        return position + min(monotonic_time - stamp, self.MAX_EXTRAPOLATION) * rate

    def rate_at(self, monotonic_time: float) -> float:
        """The playing rate, or 0 while paused or stalled (no report for MAX_EXTRAPOLATION)."""
        stamp, _position, rate = self._state
        return rate if monotonic_time - stamp <= self.MAX_EXTRAPOLATION else 0.0

    @property
    def rate(self) -> float:
        return self._state[2]


@dataclass(frozen=True)
class CallbackRecord:
    dac_time: float  # monotonic seconds when this buffer's first sample reaches the output
    music_position: float  # seconds into the music file of that first sample (NaN for silence)
    video_position: float  # the clock's video position at dac_time
    frames: int
    resynced: bool


class AuditionEngine:
    """One output stream at a time, fed from an in-memory music buffer (mono or stereo float32)."""

    def __init__(
        self,
        clock: PlayerClock,
        device: int | str | None = None,
        sample_rate: int = 48000,
        tolerance: float = 0.040,
        keep_log: int = 4000,
    ) -> None:
        self.clock = clock
        self.device = device
        self.sample_rate = sample_rate
        self.tolerance = tolerance
        self.log: list[CallbackRecord] = []
        self._keep_log = keep_log
        self._stream = None
        self._lock = threading.Lock()
        self._music = np.zeros((0, 2), np.float32)
        self._music_start = 0.0  # seconds into the file of self._music[0]
        self._offset = 0.0
        self._clip_in = 0.0
        self._clip_out = float("inf")
        self._cursor: int | None = None  # next frame index into self._music
        self.gain = 1.0  # the loaded music's loudness-matching gain (see `matched_gain`)
        self.volume = 1.0  # the preview volume, linear; read by the audio thread on every buffer

    @staticmethod
    def output_available(device: int | str | None = None) -> str | None:
        """None when an output device can be opened, else the reason (shown to the user)."""
        try:
            import sounddevice
        except OSError as error:  # the PortAudio shared library is missing
            return f"no audio library ({error}); install PortAudio (libportaudio2)"
        try:
            sounddevice.check_output_settings(device=device, channels=2, dtype="float32")
        except Exception as error:
            return f"no audio output device ({error})"
        return None

    def load(
        self,
        music: np.ndarray,
        sample_rate: int,
        music_start: float,
        offset: float,
        clip_in: float,
        clip_out: float = float("inf"),
        gain: float = 1.0,
    ) -> None:
        """Music samples beginning `music_start` s into the file; play file time `offset` at `clip_in`,
        silence from `clip_out` on, every sample times `gain` (and the preview volume)."""
        if sample_rate != self.sample_rate:
            import soxr

            music = soxr.resample(music, sample_rate, self.sample_rate, quality="HQ")
        music = np.asarray(music, np.float32)
        if music.ndim == 1:
            music = np.repeat(music[:, None], 2, axis=1)
        with self._lock:
            self._music = np.ascontiguousarray(music[:, :2])
            self._music_start = float(music_start)
            self._offset = float(offset)
            self._clip_in = float(clip_in)
            self._clip_out = float(clip_out)
            self.gain = float(gain)
            self._cursor = None
        self.log.clear()

    def start(self) -> None:
        if self._stream is not None:
            return
        try:
            import sounddevice
        except OSError as error:
            raise AudioUnavailableError(f"cannot play music: no audio library ({error})") from error
        try:
            self._stream = sounddevice.OutputStream(
                device=self.device,
                samplerate=self.sample_rate,
                channels=2,
                dtype="float32",
                latency="low",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as error:
            self._stream = None
            raise AudioUnavailableError(f"cannot play music: audio output failed ({error})") from error

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as error:  # a device that vanished mid-play must not take the app down
                log.warning("closing the audio stream failed: %s", error)

    @property
    def active(self) -> bool:
        return self._stream is not None

    def expected_music_position(self, video_position: float) -> float:
        return self._offset + (video_position - self._clip_in)

    def _callback(self, out: np.ndarray, frames: int, timing, status) -> None:
        # PortAudio reports times on its own clock: map them onto time.monotonic().
        now = time.monotonic()
        delay = min(max(timing.outputBufferDacTime - timing.currentTime, 0.0), 1.0)
        dac_time = now + delay
        video = self.clock.position_at(dac_time)
        out.fill(0.0)
        with self._lock:
            if self.clock.rate_at(now) == 0.0 or len(self._music) == 0 or video >= self._clip_out:
                # Paused, the picture stalled, or past the out point: silence (not a stutter), then pick
                # up where the video is.
                self._cursor = None
                self._record(dac_time, float("nan"), video, frames, False)
                return
            wanted = round((self.expected_music_position(video) - self._music_start) * self.sample_rate)
            resynced = self._cursor is None or abs(self._cursor - wanted) > self.tolerance * self.sample_rate
            if resynced:
                self._cursor = wanted
            cursor = self._cursor
            begin, end = max(cursor, 0), min(cursor + frames, len(self._music))
            if end > begin:
                out[begin - cursor : end - cursor] = self._music[begin:end] * (self.gain * self.volume)
            self._cursor = cursor + frames
            self._record(dac_time, self._music_start + cursor / self.sample_rate, video, frames, resynced)

    def _record(self, dac_time, music_position, video, frames, resynced) -> None:
        if len(self.log) >= self._keep_log:
            del self.log[: self._keep_log // 2]
        self.log.append(CallbackRecord(dac_time, music_position, video, frames, resynced))


@dataclass(frozen=True)
class OutputDevice:
    name: str  # what the settings keep and sounddevice opens: "device, host API" (unique, stable)
    label: str  # what the Settings dialog shows
    default: bool


def output_devices() -> list[OutputDevice]:
    """The audio outputs PortAudio offers (none without its library). Slow on some systems (it asks
    every ALSA card): call it off the GUI thread."""
    try:
        import sounddevice
    except OSError:
        return []
    hosts = sounddevice.query_hostapis()
    try:
        default_output = sounddevice.default.device[1]
        found = []
        for number, device in enumerate(sounddevice.query_devices()):
            if device["max_output_channels"] <= 0:
                continue
            host = hosts[device["hostapi"]]["name"]
            name = f"{device['name']}, {host}"  # sounddevice matches this text to exactly this device
            found.append(OutputDevice(name, f"{device['name']} ({host})", number == default_output))
    except sounddevice.PortAudioError as error:
        log.warning("cannot list audio outputs: %s", error)
        return []
    return found


def matched_gain(music: np.ndarray, sample_rate: int, loudness_lufs: float | None) -> float:
    """The gain that brings an audition to the fitted excerpts' loudness (catalog FIT_LUFS, EBU R128
    integrated), with its peaks under -1 dBFS: from the track's stored integrated loudness, or, when the
    catalog has none, from the loaded part's own (as the plain excerpt does)."""
    from viml.catalog.fitting import FIT_LUFS
    from viml.engine.music.fit import gain_to_target

    if music.size == 0:
        return 1.0
    if loudness_lufs is None or not np.isfinite(loudness_lufs):
        from viml.engine.music.rhythm.loudness import integrated_loudness

        mono = music if music.ndim == 1 else music.mean(axis=1)
        loudness_lufs = integrated_loudness(np.asarray(mono, np.float32), sample_rate)
    return gain_to_target(loudness_lufs, FIT_LUFS, peak=float(np.abs(music).max()))


def stored_loudness(catalog_file, path: str) -> float | None:
    """The integrated loudness the catalog measured for `path` with its rhythm (None: not catalogued,
    changed since, or its rhythm not measured)."""
    from pathlib import Path

    from viml.catalog.fitting import stored_rhythm
    from viml.catalog.store import Catalog

    if catalog_file is None or not Path(catalog_file).exists():
        return None
    with Catalog(Path(catalog_file)) as catalog:
        rhythm = stored_rhythm(catalog, path)
    return rhythm.loudness if rhythm is not None and np.isfinite(rhythm.loudness) else None


class NowPlaying(QObject):
    """While an audition plays: which track and where in its music file the listener is, 20 times a
    second, for the results' now-playing marker. Positions follow the player's clock: `source_time(video
    - clip_in)`, the video held within in..out; `source_time` maps the audition's time to the file's
    (a plain cut: its offset plus the time; a fitted edit: through its parts, so the marker jumps where
    the fit cut out or repeated bars: `Excerpt.source_time`). The track is named by its path: its row
    changes when the results are sorted or replaced."""

    moved = Signal(str, float)  # path, seconds into its music file; ("", nan) when the audition ends

    def __init__(self, clock: PlayerClock, interval_ms: int = 50, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clock = clock
        self.path: str | None = None  # the auditioned track
        self._span = (0.0, 0.0)  # clip_in, clip_out
        self._source_time: Callable[[float], float] = float
        self._last: float | None = None
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.tick)

    def begin(
        self, path: str, source_time: Callable[[float], float], clip_in: float, clip_out: float
    ) -> None:
        self.path, self._span, self._last = path, (clip_in, clip_out), None
        self._source_time = source_time
        self._timer.start()
        self.tick()

    def end(self) -> None:
        self._timer.stop()
        if self.path is not None:
            self.path, self._last = None, None
            self.moved.emit("", float("nan"))

    def position(self) -> float:
        clip_in, clip_out = self._span
        video = min(max(self.clock.position_at(time.monotonic()), clip_in), clip_out)
        return float(self._source_time(video - clip_in))

    def tick(self, again: bool = False) -> None:
        """Emit the position if it moved (paused: no repaint for an unchanged marker), or `again`."""
        if self.path is None:
            return
        position = self.position()
        if again or position != self._last:
            self._last = position
            self.moved.emit(self.path, position)
