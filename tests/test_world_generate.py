"""Demo world files: deterministic, decodable, tagged, and their content follows the hidden attributes."""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import numpy as np
import pytest
from viml.demo.world.attributes import PieceAttributes
from viml.demo.world.generate import WorldError, generate_world, load_world
from viml.demo.world.media_out import write_video
from viml.demo.world.render import render_attributes
from viml.demo.world.video import render_frames
from viml.engine.media import probe, read_audio, video_segment_frames


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # Ten pieces cover all five audio formats twice; two workers exercise the process pool.
    return generate_world(tmp_path_factory.mktemp("world"), pieces=10, seed=11, seconds=(5, 6), workers=2)


def test_world_json_round_trips_and_lists_real_files(world):
    loaded = load_world(world.root)
    assert loaded.to_json() == world.to_json()
    assert loaded.missing_files() == []
    assert {p.music.rsplit(".", 1)[1] for p in loaded.pieces} == {"wav", "flac", "mp3", "ogg", "m4a"}
    assert {p.split for p in loaded.pieces} == {"train", "val", "test"}
    assert len({p.id for p in loaded.pieces}) == 10
    for piece in loaded.pieces:
        assert 5 <= piece.seconds <= 6
        assert piece.attributes.style in piece.tags or piece.attributes.style in ("strings", "flute")


def test_media_decodes_with_the_expected_length(world):
    for piece in world.pieces:
        music = probe(world.music_path(piece))
        assert music.has_audio and not music.has_video
        assert abs(music.duration - piece.seconds) < 0.1
        audio = read_audio(world.music_path(piece), 16000)
        assert abs(len(audio) / 16000 - piece.seconds) < 0.1
        assert float(np.sqrt(np.mean(audio**2))) > 0.01
        video = probe(world.video_path(piece))
        assert video.has_video and not video.has_audio
        assert (video.width, video.height, round(video.fps)) == (160, 120, 12)
        assert abs(video.duration - piece.seconds) < 0.2


# Title key per format: ID3 (mp3, wav), Vorbis comments (flac, ogg), MP4 atoms (m4a).
_TITLE_KEYS = {".mp3": "TIT2", ".wav": "TIT2", ".flac": "title", ".ogg": "title", ".m4a": "\xa9nam"}


def _title(path: Path) -> str | None:
    tags = mutagen.File(path).tags
    key = _TITLE_KEYS[path.suffix]
    if not tags or key not in tags:
        return None
    value = tags[key]
    return str(value.text[0] if hasattr(value, "text") else value[0])


def test_files_carry_tags_except_the_bare_ones(world):
    for piece in world.pieces:
        assert _title(world.music_path(piece)) == (piece.title if piece.tagged else None), piece.music
    assert any(not p.tagged for p in world.pieces)


def test_same_seed_gives_identical_world(world, tmp_path):
    again = generate_world(tmp_path / "again", pieces=10, seed=11, seconds=(5, 6), workers=1)
    assert json.dumps(again.to_json()["pieces"]) == json.dumps(world.to_json()["pieces"])
    lossless = [p for p in world.pieces if p.music.endswith((".wav", ".flac"))]
    for piece in lossless:
        assert np.array_equal(
            read_audio(world.music_path(piece), 24000), read_audio(again.music_path(piece), 24000)
        )
    other = generate_world(tmp_path / "other", pieces=3, seed=12, seconds=(5, 6), workers=1)
    assert [p.attributes for p in other.pieces] != [p.attributes for p in world.pieces[:3]]


def test_existing_folders_are_protected(world, tmp_path):
    with pytest.raises(WorldError, match="already holds a world"):
        generate_world(world.root, pieces=1, seconds=(2, 2))
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(WorldError, match="not empty"):
        generate_world(occupied, pieces=1, seconds=(2, 2), overwrite=True)
    assert (occupied / "keep.txt").read_text() == "mine"
    with pytest.raises(WorldError, match="no world.json"):
        load_world(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "world.json").write_text('{"format": "something else"}')
    with pytest.raises(WorldError, match="not a valid world"):
        load_world(tmp_path / "bad")


def _attributes(**changes) -> PieceAttributes:
    base = dict(
        style="rock",
        tempo=120.0,
        mode="major",
        key=0,
        energy=0.5,
        hue=0.08,
        visual_family="organic",
        cut_bars=2,
    )
    return PieceAttributes(**{**base, **changes})


def _decoded_frames(
    tmp_path: Path, attributes: PieceAttributes, seconds: float = 6.0, seed: int = 0
) -> np.ndarray:
    path = tmp_path / f"clip-{seed}-{attributes.energy}-{attributes.tempo}-{attributes.mode}.mp4"
    write_video(path, render_frames(attributes, seconds, seed), fps=12)
    segments = video_segment_frames(path, fps=12, segment_seconds=seconds, short_side=120)
    return np.concatenate([s.frames for s in segments]).astype(np.float32) / 255.0


def test_decoded_video_brightness_follows_energy(tmp_path):
    energies = [0.1, 0.3, 0.5, 0.7, 0.9]
    brightness = []
    for seed, energy in enumerate(energies):
        frames = _decoded_frames(tmp_path, _attributes(energy=energy, hue=0.1 + 0.1 * seed % 0.3), seed=seed)
        brightness.append(float(frames.max(axis=3).mean()))  # HSV value
    assert all(b > a for a, b in zip(brightness, brightness[1:], strict=False)), brightness


def test_decoded_video_hue_follows_mode(tmp_path):
    def warmth(frames: np.ndarray) -> float:
        return float(frames[..., 0].mean() - frames[..., 2].mean())  # red minus blue

    for seed in range(3):
        major = warmth(_decoded_frames(tmp_path, _attributes(mode="major", hue=0.08), seed=seed))
        minor = warmth(_decoded_frames(tmp_path, _attributes(mode="minor", hue=0.62), seed=seed))
        assert major > 0.05 > -0.05 > minor


def test_cuts_fall_on_bars_at_a_rate_set_by_tempo(tmp_path):
    def cut_times(tempo: float) -> np.ndarray:
        frames = _decoded_frames(tmp_path, _attributes(tempo=tempo, cut_bars=1, energy=0.6), seconds=8.0)
        # Compare layouts, not levels: the beat pulse changes brightness on every beat, a cut
        # changes the picture. Correlation of mean-free grey frames drops only at a cut.
        grey = frames.mean(axis=3).reshape(len(frames), -1)
        grey -= grey.mean(axis=1, keepdims=True)
        grey /= np.linalg.norm(grey, axis=1, keepdims=True)
        change = 1.0 - np.sum(grey[1:] * grey[:-1], axis=1)
        return (np.flatnonzero(change > 0.2) + 1) / 12.0  # time of the first frame of each new shot

    # One bar is 4 beats: at 90 BPM a cut every 2.67 s (2 in 8 s), at 160 BPM every 1.5 s (5 in 8 s).
    for tempo, count in ((90.0, 2), (160.0, 5)):
        bar = 4 * 60.0 / tempo
        times = cut_times(tempo)
        assert len(times) == count, (tempo, times)
        assert np.allclose(times, bar * np.arange(1, count + 1), atol=1.01 / 12), (tempo, times)


def _tempo_estimate(audio: np.ndarray, sample_rate: int) -> float:
    """BPM from the autocorrelation of a spectral-flux onset envelope (100 frames per second)."""
    hop = sample_rate // 100
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::hop] * np.hanning(1024)
    spectrum = np.log1p(np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(spectrum, axis=0), 0).sum(axis=1)
    flux -= flux.mean()
    correlation = np.correlate(flux, flux, mode="full")[len(flux) - 1 :]
    lags = np.arange(30, 100)  # 60..200 BPM
    return 6000.0 / lags[np.argmax(correlation[lags])]


@pytest.mark.parametrize("style", ["rock", "electronic", "jazz", "folk"])
def test_audio_tempo_matches_bpm(style):
    for tempo in (96.0, 128.0):
        attributes = _attributes(style=style, tempo=tempo, energy=0.7)
        audio = render_attributes(attributes, 10.0, seed=2, sample_rate=16000).mean(axis=1)
        estimate = _tempo_estimate(audio, 16000)
        # Octave errors (half or double) are the usual failure of autocorrelation; accept those only.
        assert min(abs(estimate / tempo * k - 1) for k in (0.5, 1.0, 2.0)) < 0.04, (style, tempo, estimate)


def test_audio_loudness_follows_energy():
    levels = []
    for energy in (0.15, 0.5, 0.85):
        audio = render_attributes(_attributes(style="folk", energy=energy), 6.0, seed=4, sample_rate=16000)
        levels.append(float(np.sqrt(np.mean(audio**2))))
    assert levels[0] < levels[1] < levels[2], levels


def _rank(values) -> np.ndarray:
    return np.argsort(np.argsort(values)).astype(float)


def test_world_videos_show_energy_and_mode(world):
    energy, brightness, warmth, major = [], [], [], []
    for piece in world.pieces:
        segments = video_segment_frames(world.video_path(piece), fps=2, short_side=60)
        frames = np.concatenate([s.frames for s in segments]).astype(np.float32) / 255.0
        energy.append(piece.attributes.energy)
        brightness.append(frames.max(axis=3).mean())
        warmth.append(frames[..., 0].mean() - frames[..., 2].mean())
        major.append(piece.attributes.mode == "major")
    assert np.corrcoef(_rank(energy), _rank(brightness))[0, 1] > 0.7
    warmth, major = np.array(warmth), np.array(major)
    assert major.any() and (~major).any()
    assert warmth[major].min() > warmth[~major].max()


def test_overwrite_recovers_unfinished_and_corrupt_worlds(tmp_path):
    root = tmp_path / "w"
    world = generate_world(root, pieces=2, seed=5, seconds=(2, 2), workers=1)
    assert not (root / "world.partial.json").exists()
    # An interrupted run leaves only the plan: refused without overwrite, cleaned up with it.
    (root / "world.json").rename(root / "world.partial.json")
    (root / "music" / "mine.wav").write_bytes(b"not ours")
    with pytest.raises(WorldError, match="unfinished"):
        generate_world(root, pieces=1, seconds=(2, 2))
    generate_world(root, pieces=1, seed=6, seconds=(2, 2), workers=1, overwrite=True)
    assert not world.video_path(world.pieces[1]).exists()
    assert (root / "music" / "mine.wav").read_bytes() == b"not ours"
    # A corrupt world.json does not block overwriting either.
    (root / "world.json").write_text("{broken")
    again = generate_world(root, pieces=1, seed=6, seconds=(2, 2), workers=1, overwrite=True)
    assert load_world(root).to_json() == again.to_json()


def test_lossless_files_hold_exactly_the_rendered_music(world):
    piece = next(p for p in world.pieces if p.music.endswith(".wav"))
    rendered = render_attributes(piece.attributes, piece.seconds, piece.seed, world.sample_rate).mean(axis=1)
    decoded = read_audio(world.music_path(piece), world.sample_rate)
    assert decoded.shape == rendered.shape
    assert float(np.abs(decoded - rendered).max()) < 1e-3  # 16-bit quantisation only
