"""Drag-out and audition of a suggestion's part, in the real app offscreen: the fitted edit rendered by the
real renderer (catalog/fitting.py) from a catalog that holds the tracks' beats, on generated music whose
beats are known exactly; the cache, the whole-file modifier, the plain cut without beats, and the
loudness every audition plays at."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import av
import numpy as np
import pytest
from hostile_media import write_wav
from media_factory import write_video
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from test_fit import known_rhythm, music
from viml.catalog import fitting
from viml.catalog.excerpts import ExcerptCache, ExcerptRequest
from viml.catalog.store import Catalog, Fingerprint
from viml.desktop.results import WHOLE_FILE_MODIFIER, Suggestion
from viml.engine.music.rhythm.loudness import integrated_loudness
from viml.engine.music.types import MusicSegments

RATE = 44100
SECONDS = 40.0
BPM = 120.0  # bars of 2 s (4/4) from 0.25 s: downbeats at 0.25, 2.25, 4.25, ...


def catalogue(catalog: Catalog, path: Path, duration: float, rhythm=None) -> None:
    """A catalogued track for `path` as it is on disk (size, mtime), with its rhythm when given."""
    info = path.stat()
    digest = hashlib.sha1(path.name.encode()).hexdigest()
    fingerprint = Fingerprint(str(path), info.st_size, info.st_mtime_ns, digest, "wav", duration)
    segments = MusicSegments(
        starts=np.array([0.0]),
        ends=np.array([duration]),
        embeddings=np.ones((1, 4), np.float32),
        tag_probabilities={"T": np.zeros((1, 2), np.float32)},
        tag_names={"T": ["a", "b"]},
    )
    catalog.write_analysis(fingerprint, "synthetic", segments, 1)
    if rhythm is not None:
        catalog.write_rhythm(digest, "test-rhythm", rhythm)


@pytest.fixture
def tracks(tmp_path):
    """Two tracks at known beats, 18 dB apart (their measured loudness stored, as a scan stores it), and
    one without beats in the catalog."""
    folder = tmp_path / "music"
    folder.mkdir()
    db = tmp_path / "catalog.sqlite"
    made = {}
    with Catalog(db) as catalog:
        for name, level in (("Quiet Song", 0.1), ("Loud Song", 0.8)):
            base = known_rhythm(BPM, 4, SECONDS, sections=(16.25,))
            audio = music(base, RATE) * level
            path = write_wav(folder / f"{name}.wav", audio.T, RATE)
            rhythm = type(base)(base.beats, base.sections, integrated_loudness(audio.mean(axis=1), RATE),
                                duration=SECONDS)  # fmt: skip
            catalogue(catalog, path, SECONDS, rhythm)
            made[name] = (path, audio, rhythm)
        unknown = known_rhythm(BPM, 4, SECONDS)
        audio = music(unknown, RATE) * 0.3
        path = write_wav(folder / "No Beats.wav", audio.T, RATE)
        catalogue(catalog, path, SECONDS)  # analysed, but no rhythm stored (and BeatNet is not converted)
        made["No Beats"] = (path, audio, None)
    return db, made


@pytest.fixture
def renders(monkeypatch):
    """Every call of the real fitted renderer, with whether it ran on the GUI thread."""
    calls: list[tuple[str, bool]] = []
    real = fitting.render_excerpt

    def counted(path, *args, **kwargs):
        calls.append((Path(path).name, threading.current_thread() is threading.main_thread()))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fitting, "render_excerpt", counted)
    return calls


def open_window(qtbot, db: Path, tmp_path: Path, clip: tuple[float, float] | None):
    from viml.desktop.main_window import MainWindow
    from viml.desktop.settings import AppSettings

    settings = AppSettings()
    settings.catalog = str(db)
    window = MainWindow(settings, audio_device="no-such-device-xyz")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if clip is not None:
        video = write_video(tmp_path / "clip.mp4", seconds=10.0, fps=12)
        window.open_video(str(video))
        qtbot.waitUntil(lambda: window.player.duration > 0, timeout=10000)
        window.player.set_range(*clip)
    # No bundle here: the query this asks for ends in a message; the results are set by the test.
    qtbot.waitUntil(window.is_idle, timeout=20000)
    return window


def suggestion(path: Path, offset: float, length: float = 10.0) -> Suggestion:
    return Suggestion(str(path), path.stem, 0.9, offset, length, SECONDS, ("a",), np.array([0.5]))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(frames, axis=1).reshape(-1, channels).astype(np.float32) / 32768.0, rate


def drag(qtbot, window, row: int, modifiers=Qt.NoModifier, release: bool = True) -> list:
    """Press on a row, move past the drag distance (Qt calls startDrag); the files of each drag that
    started (read at once: the drag owns its mime data)."""
    started: list[list[Path]] = []
    window.results.dragStarted.connect(
        lambda mime: started.append([Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()])
    )
    viewport = window.results.viewport()
    point = window.results.visualRect(window.results_model.index(row, 1)).center()
    QTest.mousePress(viewport, Qt.LeftButton, modifiers, point)
    for step in (10, 30, 60):
        QTest.mouseMove(viewport, point + QPoint(step, 0))
    if release:
        QTest.mouseRelease(viewport, Qt.LeftButton, modifiers, point + QPoint(60, 0))
    return started


def lag_of(edit: np.ndarray, source: np.ndarray, rate: int, around: float, search: float = 1.5) -> float:
    """Where in the source the edit's first half second is (seconds, by normalised cross-correlation)."""
    skip = int(0.01 * rate)  # past the fade-in
    head = edit[skip : int(0.5 * rate), 0].astype(np.float64)
    low = max(0, int((around - search) * rate))
    window = source[low : int((around + search + 0.5) * rate), 0].astype(np.float64)
    scores = np.correlate(window, head, mode="valid")
    energy = np.convolve(window**2, np.ones(len(head)), mode="valid")
    return (low + int(np.argmax(scores / np.sqrt(np.maximum(energy, 1e-12)))) - skip) / rate


def test_drag_carries_the_fitted_part_once_rendered_and_ctrl_the_whole_file(qtbot, tmp_path, tracks, renders):
    db, made = tracks
    window = open_window(qtbot, db, tmp_path, clip=(1.0, 7.5))
    quiet, loud = made["Quiet Song"], made["Loud Song"]
    window.show_results([suggestion(quiet[0], 10.25), suggestion(loud[0], 20.25)])
    # Row 0 is selected with the results: its excerpt is rendered in the background, off the GUI thread.
    qtbot.waitUntil(lambda: not window.excerpts.busy, timeout=20000)
    assert renders == [("Quiet Song.wav", False)]

    started = drag(qtbot, window, 0)
    assert len(started) == 1, "rendered already: the drag starts at once"
    assert len(started[0]) == 1
    excerpt = started[0][0]
    assert excerpt.name == "Quiet Song 0m10.2-0m16.8.wav"
    assert window.excerpts.cache.contains(excerpt)
    assert "(fitted: starts at bar 6 (0:10.2)" in window.statusBar().currentMessage()
    edit, rate = read_wav(excerpt)
    assert rate == RATE and edit.shape == (round(6.5 * RATE), 2)  # the clip's length, to the sample
    downbeats = quiet[2].beats.downbeats
    start = lag_of(edit, quiet[1], RATE, around=10.25)
    assert np.min(np.abs(downbeats - start)) <= 1.0 / RATE, f"starts at {start:.4f} s, not on a downbeat"

    again = drag(qtbot, window, 0)
    assert again == started[:1] == [[excerpt]]
    assert len(renders) == 1, "the second drag is a cache hit"

    # Row 1 dragged at once: not rendered yet, so the drag waits (busy cursor) and starts when it is ready.
    waiting = drag(qtbot, window, 1, release=False)
    assert waiting == [] and window.pending_drag is not None
    assert QGuiApplication.overrideCursor().shape() == Qt.BusyCursor
    qtbot.waitUntil(lambda: len(waiting) == 1, timeout=20000)
    assert QGuiApplication.overrideCursor() is None and window.pending_drag is None
    assert [path.name for path in waiting[0]] == ["Loud Song 0m20.2-0m26.8.wav"]
    QTest.mouseRelease(window.results.viewport(), Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.excerpts.busy, timeout=5000)
    assert renders == [("Quiet Song.wav", False), ("Loud Song.wav", False)]  # one render each, in workers

    whole = drag(qtbot, window, 1, modifiers=WHOLE_FILE_MODIFIER)
    assert whole == [[loud[0].resolve()]]
    assert window.selected_suggestion().path == str(loud[0]), "the modifier does not deselect the row"
    assert window.statusBar().currentMessage() == "Dragging the whole file Loud Song.wav"

    # Let go over the app itself: the cache is not a music folder.
    folders = list(window.settings.music_folders)
    window.open_dropped([str(excerpt)])
    assert window.settings.music_folders == folders
    assert "not added to the library" in window.statusBar().currentMessage()
    window.close()


def test_audition_plays_the_fitted_edit_at_one_loudness(qtbot, tmp_path, tracks, renders):
    db, made = tracks
    window = open_window(qtbot, db, tmp_path, clip=(2.0, 8.0))
    rows = [suggestion(made[name][0], 10.25) for name in ("Quiet Song", "Loud Song")]
    window.show_results(rows)
    levels = []
    for row in (0, 1):
        window.statusBar().clearMessage()
        window.start_audition(row)  # no audio device: the buffer is loaded, then the clip plays alone
        qtbot.waitUntil(lambda: "without music" in window.statusBar().currentMessage(), timeout=20000)
        engine = window.audition
        assert (engine._music_start, engine._offset, engine._clip_in) == (0.0, 0.0, 2.0)  # edit 0 at in
        buffer = engine._music.copy()
        assert len(buffer) == round(6.0 * engine.sample_rate)
        # The gain is the stored loudness's: measured over the music before the edit's fade-out (this
        # 6 s edit plays bar 6, then fades over bars 7-8).
        excerpt = window.excerpts.cached(window.excerpt_request(rows[row]))
        assert excerpt.fitted and "fades out over 4.0 s from bar 7" in excerpt.description
        before_fade = buffer[: round(2.0 * engine.sample_rate)].mean(axis=1)
        levels.append(integrated_loudness(before_fade, engine.sample_rate))
        window.stop_audition()
    sources = [made[name][2].loudness for name in ("Quiet Song", "Loud Song")]
    assert sources[1] - sources[0] == pytest.approx(18.1, abs=0.5)  # 0.1 vs 0.8
    assert levels == pytest.approx([fitting.FIT_LUFS] * 2, abs=1.0)
    assert abs(levels[0] - levels[1]) < 1.0
    # The same excerpt a drag carries: one render per suggestion, shared.
    qtbot.waitUntil(lambda: not window.excerpts.busy, timeout=10000)
    assert sorted(name for name, _ in renders) == ["Loud Song.wav", "Quiet Song.wav"]
    assert not any(on_gui for _, on_gui in renders)
    drag(qtbot, window, 1)
    assert len(renders) == 2
    window.close()


def test_without_beats_the_drag_is_a_plain_cut_and_audition_plays_the_track(qtbot, tmp_path, tracks):
    db, made = tracks
    path, audio, _ = made["No Beats"]
    window = open_window(qtbot, db, tmp_path, clip=None)  # prompt-only: the suggestion's own length
    window.show_results([suggestion(path, 10.0, length=7.25)])
    qtbot.waitUntil(lambda: not window.excerpts.busy, timeout=20000)
    started = drag(qtbot, window, 0)
    (excerpt,) = started[0]
    edit, rate = read_wav(excerpt)
    assert edit.shape == (round(7.25 * RATE), 2)
    assert lag_of(edit, audio, RATE, around=10.0) == pytest.approx(10.0, abs=1.0 / RATE)  # from the offset
    assert integrated_loudness(edit.mean(axis=1), RATE) == pytest.approx(fitting.FIT_LUFS, abs=1.0)
    request = window.excerpt_request(window.results_model.suggestion(0))
    assert request.duration == 7.25 and window.excerpts.cached(request).fitted is False

    video = write_video(tmp_path / "clip.mp4", seconds=10.0, fps=12)
    window.open_video(str(video), 1.0, 6.0)
    qtbot.waitUntil(lambda: window.player.out_point == 6.0 and window.is_idle(), timeout=20000)
    window.show_results([suggestion(path, 10.0, length=5.0)])
    window.start_audition(0)
    qtbot.waitUntil(lambda: "without music" in window.statusBar().currentMessage(), timeout=20000)
    engine = window.audition
    # As before the fitted edit: the track itself from its best offset, a second to spare.
    assert (engine._music_start, engine._offset, engine._clip_in) == (10.0, 10.0, 1.0)
    assert len(engine._music) == round(6.0 * engine.sample_rate)
    window.close()


def test_excerpt_names_are_safe_and_the_cache_drops_the_least_recently_used(tmp_path):
    request = ExcerptRequest("/m/x.wav", "AC/DC – *Live* ", 64.2, 30.0)
    assert request.file_name == "AC_DC - _Live_ 1m04.2-1m34.2.wav"
    assert (
        ExcerptRequest("/m/Late Train.wav", "Late Train.wav", 10.0, 10.0).file_name
        == "Late Train 0m10.0-0m20.0.wav"
    )
    source = write_wav(tmp_path / "s.wav", np.full((2, 8 * RATE), 0.1, np.float32), RATE)
    entry_bytes = 4 * 2 * RATE + 4096  # a 2 s stereo 16-bit excerpt, its sidecar and headers
    cache = ExcerptCache(tmp_path / "cache", max_bytes=int(2.5 * entry_bytes))
    first, second, third = (ExcerptRequest(str(source), "s", start, 2.0) for start in (0.0, 2.0, 4.0))
    for request in (first, second):
        cache.render(request)  # BeatNet is not converted here: plain cuts
    assert cache.lookup(first) is not None  # used again: now the second is the oldest
    cache.render(third)
    assert cache.lookup(second) is None
    assert cache.lookup(first) is not None and cache.lookup(third) is not None
    assert not cache.contains(source) and cache.contains(cache.lookup(third).path)
