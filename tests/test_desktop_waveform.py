"""A result you can read at a glance (issue 16): each row's cell paints the stored waveform with the best
part highlighted, the finer match curve, section and downbeat marks, the clip's in–out against the part
and a now-playing marker; the tooltip says why (words, tags, prompt terms, what the score means); the
tags cell is never empty when the track has tags. Rendered to images in a real Qt app, offscreen."""

from __future__ import annotations

import os
import wave

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from viml.desktop import backend
from viml.desktop.results import ResultsModel, Suggestion
from viml.desktop.waveform import NOW_PLAYING_ROLE, ROW_HEIGHT, Layout, WaveformDelegate
from viml.desktop.why import Why
from viml.engine.music.waveform import waveform_of
from viml.search import Suggestion as SearchSuggestion

WIDTH = 300
DURATION = 120.0


def rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format_RGB888)
    array = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)


def steady_waveform(seconds: float = DURATION, rate: int = 8000):
    """A tone at a steady level: the same waveform everywhere, so only the highlight tells parts apart."""
    t = np.arange(int(seconds * rate)) / rate
    return waveform_of((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def suggestion(**changes) -> Suggestion:
    values = dict(
        path="/music/song.wav", title="Song", score=0.61, offset=40.0, length=20.0, duration=DURATION,
        tags=("piano",), curve=np.linspace(0.1, 0.5, 12, dtype=np.float32), curve_step=10.0,
        clip_length=20.0, waveform=steady_waveform(), why=Why(),
    )  # fmt: skip
    values.update(changes)
    return Suggestion(**values)


def paint(model: ResultsModel, row: int = 0, width: int = WIDTH, height: int = ROW_HEIGHT) -> np.ndarray:
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    painter = QPainter(image)
    WaveformDelegate().paint(painter, option, model.index(row, ResultsModel.CURVE_COLUMN))
    painter.end()
    return rgb(image)


def model_of(*items: Suggestion) -> ResultsModel:
    model = ResultsModel()
    model.set_suggestions(list(items))
    return model


def bluish(pixel) -> bool:
    red, green, blue = pixel
    return blue - red > 40


def test_the_best_part_is_highlighted_on_the_waveform(qtbot):
    pixels = paint(model_of(suggestion(fine_curve=np.zeros((0, 2)), curve=np.zeros(0, np.float32))))
    layout = Layout(WIDTH, ROW_HEIGHT, DURATION)
    middle = int(layout.wave_top + layout.wave_height / 2)
    inside = [int(layout.x(t)) for t in (45.0, 50.0, 55.0)]
    outside = [int(layout.x(t)) for t in (10.0, 25.0, 80.0, 110.0)]
    assert all(bluish(pixels[middle, x]) for x in inside)
    for x in outside:  # the same waveform, grey: drawn (darker than the background) but not blue
        red, green, blue = pixels[middle, x]
        assert red < 200 and abs(int(blue) - int(red)) < 25
    # The waveform has a shape: above and below its peak level the cell stays background.
    assert (pixels[1, outside[0]] == 255).all()


def test_the_waveform_follows_the_stored_levels(qtbot):
    rate = 8000
    t = np.arange(int(DURATION * rate)) / rate
    quiet_start = (t > 60) & (t < 90)
    audio = 0.8 * np.sin(2 * np.pi * 220 * t) * np.where(quiet_start, 0.05, 1.0)
    item = suggestion(waveform=waveform_of(audio.astype(np.float32), rate), offset=100.0, length=10.0,
                      curve=np.zeros(0, np.float32), clip_length=None)  # fmt: skip
    pixels = paint(model_of(item))
    layout = Layout(WIDTH, ROW_HEIGHT, DURATION)

    def drawn_height(seconds: float) -> int:
        column = pixels[
            int(layout.wave_top) : int(layout.wave_top + layout.wave_height), int(layout.x(seconds))
        ]
        return int((column.sum(axis=1) < 3 * 250).sum())

    assert drawn_height(30.0) > 4 * drawn_height(75.0) and drawn_height(75.0) >= 1


def test_the_fine_curve_is_drawn_where_the_search_refined(qtbot):
    from viml.desktop.style import CURVE

    green = np.array([QColor(CURVE).red(), QColor(CURVE).green(), QColor(CURVE).blue()])
    starts = np.arange(0.0, 100.0, 2.0)
    fine = np.column_stack([starts, np.exp(-((starts - 40.0) ** 2) / 50.0)])  # a peak at 40 s
    pixels = paint(model_of(suggestion(fine_curve=fine, waveform=None)))
    layout = Layout(WIDTH, ROW_HEIGHT, DURATION)

    def curve_row(seconds: float) -> float:
        column = pixels[:, int(layout.x(seconds))]
        rows = np.flatnonzero(np.abs(column - green).sum(axis=1) < 80)
        return float(rows.mean()) if len(rows) else np.nan

    assert curve_row(40.0) < curve_row(10.0) - 10  # higher (smaller y) at the best start
    assert np.isnan(curve_row(110.0))  # no finer window starts there: nothing drawn


def test_sections_downbeats_and_the_clip_strip(qtbot):
    from viml.desktop.waveform import OVERHANG

    red = np.array([QColor(OVERHANG).red(), QColor(OVERHANG).green(), QColor(OVERHANG).blue()])
    item = suggestion(sections=(30.0, 90.0), downbeats=(40.0, 44.0, 48.0), waveform=None,
                      curve=np.zeros(0, np.float32))  # fmt: skip
    pixels = paint(model_of(item))
    layout = Layout(WIDTH, ROW_HEIGHT, DURATION)
    top = int(layout.wave_top) + 2
    assert pixels[top, int(layout.x(30.0))].sum() < 3 * 150  # a section tick along the top
    assert (pixels[top, int(layout.x(70.0))] == 255).all()  # no section there: background
    bottom = int(layout.wave_top + layout.wave_height) - 2
    assert pixels[bottom, int(layout.x(44.0))].sum() < pixels[bottom, int(layout.x(46.0))].sum()  # a downbeat
    strip = pixels[int(layout.strip_top) : int(layout.strip_top + 6)]
    assert not (np.abs(strip - red).sum(axis=2) < 60).any()  # the clip fits the music: no red
    longer = paint(model_of(suggestion(clip_length=30.0, length=20.0, offset=100.0, waveform=None)))
    strip = longer[int(layout.strip_top) : int(layout.strip_top + 6)]
    reds = np.flatnonzero((np.abs(strip - red).sum(axis=2) < 60).any(axis=0))
    # The bracket from the part's start in red, and red on to the music's end.
    assert len(reds) and abs(reds.min() - layout.x(100.0)) < 2 and reds.max() >= int(layout.x(120.0)) - 1


def test_now_playing_marker_and_only_its_cell_repaints(qtbot):
    from viml.desktop.waveform import PLAYHEAD

    red = np.array([QColor(PLAYHEAD).red(), QColor(PLAYHEAD).green(), QColor(PLAYHEAD).blue()])
    model = model_of(suggestion(), suggestion(path="/music/other.wav", title="Other"))
    changed = []
    model.dataChanged.connect(lambda top, bottom, roles: changed.append((top.row(), top.column(), bottom.row(),
                                                                         bottom.column(), list(roles))))  # fmt: skip
    model.set_now_playing(1, 75.0)
    assert changed == [(1, ResultsModel.CURVE_COLUMN, 1, ResultsModel.CURVE_COLUMN, [NOW_PLAYING_ROLE])]
    assert model.data(model.index(1, ResultsModel.CURVE_COLUMN), NOW_PLAYING_ROLE) == 75.0
    assert model.data(model.index(0, ResultsModel.CURVE_COLUMN), NOW_PLAYING_ROLE) is None
    pixels = paint(model, row=1)
    columns = np.flatnonzero(np.abs(pixels[ROW_HEIGHT // 2] - red).sum(axis=1) < 60)
    expected = Layout(WIDTH, ROW_HEIGHT, DURATION).x(75.0)
    assert len(columns) and abs(columns.mean() - expected) < 2
    assert not (np.abs(paint(model, row=0)[ROW_HEIGHT // 2] - red).sum(axis=1) < 60).any()
    changed.clear()
    model.set_now_playing(0, 10.0)  # the marker moves rows: both cells, nothing else
    assert sorted(c[0] for c in changed) == [0, 1] and {c[1] for c in changed} == {ResultsModel.CURVE_COLUMN}
    changed.clear()
    model.set_now_playing(-1, float("nan"))  # what the audition sends when it ends
    assert [c[0] for c in changed] == [0]
    assert model.data(model.index(0, ResultsModel.CURVE_COLUMN), NOW_PLAYING_ROLE) is None


def test_a_paint_copies_what_was_drawn_where_the_results_were_made(qtbot):
    import threading

    from viml.desktop import waveform

    model = model_of(suggestion())
    paint(model)
    assert model.picture(0).renders == 1 and waveform.painted_size == (WIDTH, ROW_HEIGHT, 1.0)
    paint(model)
    model.set_now_playing(0, 50.0)
    paint(model)
    assert model.picture(0).renders == 1  # the marker is drawn over the copy, the rest is not redrawn
    made = []  # the next result list, prepared where a query's results are made: a worker thread
    worker = threading.Thread(target=lambda: made.extend(waveform.prepare([suggestion(offset=10.0),
                                                                           suggestion(path="/m/b.wav")])))  # fmt: skip
    worker.start()
    worker.join()
    assert [row.picture.renders for row in made] == [1, 1]  # drawn there, at the size last painted
    model.set_suggestions(made)
    paint(model, row=1)
    assert model.picture(1) is made[1].picture and model.picture(1).renders == 1


def search_suggestion(**changes) -> SearchSuggestion:
    values = dict(
        rank=1, path="/music/battle.wav", score=1.84, start=32.0, end=44.0, matched_tags=[], curve=[0.2, 0.4],
        segment_seconds=10.0, title="Battle", artist="Band", album=None, genre=None, bpm=None, duration=90.0,
        sound_score=0.412,
    )  # fmt: skip
    values.update(changes)
    return SearchSuggestion(**values)


def test_the_tags_cell_shows_the_tracks_strongest_tags_when_the_part_has_none_above_threshold(qtbot):
    weak = [{"tag": "ambient", "probability": 0.21}, {"tag": "slow", "probability": 0.17}]
    row = backend.suggestion_row(search_suggestion(top_tags=weak))
    model = model_of(row)
    tags = model.index(0, ResultsModel.TAGS_COLUMN)
    assert model.data(tags) == "ambient, slow" and row.weak_tags
    assert model.data(tags, Qt.ForegroundRole) is not None  # greyed: weaker than the part's tags
    assert "No tag reaches 30% in the best part; the track's strongest: ambient 21%, slow 17%" in model.data(
        tags, Qt.ToolTipRole
    )
    strong = backend.suggestion_row(
        search_suggestion(
            matched_tags=[{"tag": "rock", "probability": 0.7, "in_prompt": True}], top_tags=weak
        )
    )
    model = model_of(strong)
    assert model.data(model.index(0, ResultsModel.TAGS_COLUMN)) == "rock" and not strong.weak_tags
    assert model.data(model.index(0, ResultsModel.TAGS_COLUMN), Qt.ForegroundRole) is None
    assert "Tags of the best part: rock 70% (in the prompt)" in model.data(model.index(0, 1), Qt.ToolTipRole)


def test_the_tooltip_says_which_words_terms_and_tags_matched_and_what_the_score_is(qtbot):
    item = search_suggestion(
        score_kind="fused", evidence={"words": 1.0, "meaning": 0.35},
        matched_words=[{"field": "title", "word": "battle"}],
        term_matches=[
            {"concept": "piano", "source": "piano", "weight": 2.0, "measured": False, "probability": 0.8,
             "contribution": 0.4},
            {"concept": "building", "source": "slowly building", "weight": 1.0, "measured": True,
             "probability": 0.6, "contribution": 0.15},
            {"concept": "any vocals", "source": "vocals", "weight": -1.0, "measured": False,
             "probability": 0.1, "contribution": -0.025},
        ],
        start_bar=17, section_start=True,
    )  # fmt: skip
    model = model_of(backend.suggestion_row(item, clip_length=15.0))
    text = model.data(model.index(0, 1), Qt.ToolTipRole)
    assert "Band – Battle" in text and "/music/battle.wav" in text
    assert "standard deviations" in text and "sound: 0.412" in text
    assert "words: 1.00, matched title “battle”" in text and "meaning: 0.35" in text
    assert "piano (tag, ×2): 80% → +0.400" in text
    assert (
        "slowly building (measured, ×1): 60% → +0.150" in text and "vocals (tag, ×-1): 10% → −0.025" in text
    )
    assert "Best part 0:32.0 – 0:44.0, bar 17 (a section starts there); the clip is 15.0 s" in text
    assert "3.0 s longer than the music left" in text  # 12 s of music for a 15 s clip
    sound = model_of(backend.suggestion_row(search_suggestion(score=0.412)))
    assert "cosine similarity" in sound.data(sound.index(0, 1), Qt.ToolTipRole)


# --- a real search over a real scanned catalog: the rows carry what the cell draws -------------------


def write_tones(path, seconds, frequencies, rate=16000):
    t = np.arange(int(rate * seconds)) / rate
    freq = np.array(frequencies)[np.minimum((t // 10).astype(int), len(frequencies) - 1)]
    level = np.where(t < seconds / 2, 0.4, 0.04)  # loud, then 20 dB down
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((level * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2").tobytes())


class IdentitySpace:
    id = "identity-waveform-test"

    def embed_segments(self, segments):
        return segments.embeddings


def test_a_real_search_gives_rows_with_waveform_fine_curve_terms_and_tags(qtbot, tmp_path):
    from viml.catalog.scan import scan
    from viml.catalog.store import Catalog
    from viml.search import Searcher
    from viml.search.prompt_terms import parse_prompt
    from viml.search.spaces import ensure_space

    folder = tmp_path / "music"
    folder.mkdir()
    write_tones(folder / "a.wav", 50, [110, 220, 440, 880, 1760])
    write_tones(folder / "b.wav", 40, [3000, 150, 5000, 600])
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        scan(catalog, folder, "viml.demo.stats_analyzer:load", jobs=1, progress=False)
        ensure_space(catalog, IdentitySpace())
        target = catalog.music_segments(catalog.track(folder / "a.wav").hash)
        found = Searcher(catalog).rank(target.embeddings[1:3], clip_seconds=20.0, terms=parse_prompt("loud^2"),
                                       top=2, space_id=IdentitySpace.id)  # fmt: skip
        waveforms = backend.stored_waveforms(catalog, [item.path for item in found])
    best = found[0]
    assert best.path == str(folder / "a.wav")
    # No measured downbeats: finer windows every second, the best where the part starts.
    times = [t for t, _ in best.fine_curve]
    assert times[:3] == [0.0, 1.0, 2.0] and max(best.fine_curve, key=lambda p: p[1])[0] == best.start
    assert (
        best.top_tags and best.term_matches[0]["concept"] == "loud" and best.term_matches[0]["weight"] == 2.0
    )
    assert set(waveforms) == {item.path for item in found}
    row = backend.suggestion_row(best, 20.0, waveforms[best.path])
    assert row.waveform is not None and row.waveform.duration == pytest.approx(50.0, abs=0.05)
    assert row.fine_curve.shape == (len(best.fine_curve), 2) and row.clip_length == 20.0
    model = model_of(row)
    assert "loud (tag, ×2)" in model.data(model.index(0, 1), Qt.ToolTipRole)
    pixels = paint(model)
    layout = Layout(WIDTH, ROW_HEIGHT, 50.0)
    middle = int(layout.wave_top + layout.wave_height / 2)
    assert bluish(pixels[middle, int(layout.x(best.start + 5))])
