"""Ground truth for the beat benchmark (bench/beats.py): true beats, downbeats and tempo per song.

Two sources, both real audio with a beat grid written by the music's author:
- Frets on Fire song packages (Debian `fretsonfire-songs-*`): each song folder has audio stems
  (song.ogg, guitar.ogg, maybe rhythm.ogg/drums.ogg, mixed here as the game plays them together),
  `notes.mid`, a chart whose tempo map is the song's beat grid, and `song.ini`, whose `delay` (ms)
  shifts the chart against the audio. FoF's Song.getPosition() returns `audio position - delay`, so a
  chart event at chart time t sounds at audio time t + delay: beats = chart beats + delay / 1000.
- The demo world (`viml world generate`): every piece is composed as MIDI from its hidden attributes
  and a seed, then rendered. The MIDI is not stored, so it is composed again here with the same
  function and random stream the renderer used; its tempo map gives the beats.

Beats come from pretty_midi's `get_beats()` / `get_downbeats()` (tempo changes and time signatures;
4/4 from the first tick when a chart has no time-signature event), extended at the last tempo past the
chart's last event to the end of the audio, and kept only where the audio is audible.
"""

from __future__ import annotations

import configparser
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pretty_midi
from viml.core.errors import UserFacingError

FOF_SONGS = Path("/usr/share/games/fretsonfire/data/songs")
# Stems FoF (and FoFiX) play together; preview.ogg is a menu excerpt, not part of the song.
FOF_STEMS = ("song.ogg", "guitar.ogg", "rhythm.ogg", "drums.ogg")
MIX_RATE = 44100
# The onset flux's lag behind note starts in `grid_offset`: median best shift of the exact grids of a
# 40-piece demo world (seed 0; 8..28 ms, 10th-90th percentile 12..24 ms).
FLUX_LAG = 0.018
# Beats where the mix is this far below its loud level (95th percentile of 100 ms RMS) are silence.
SILENCE_DB = 40.0


class TruthError(UserFacingError):
    """A song folder or chart that cannot give a beat grid."""


@dataclass(frozen=True)
class TrueBeats:
    """One song's reference: its audio file and the beat grid its author wrote (times in seconds)."""

    name: str
    audio: Path  # one file with the whole mix
    beats: np.ndarray  # float64 [B], ascending
    downbeats: np.ndarray  # float64 [D], a subset of beats
    tempo: float  # BPM: 60 / median inter-beat interval (the tempo held longest)
    beats_per_bar: int  # of the last time signature (4 when the chart has none)
    duration: float  # seconds of audio
    delay: float = 0.0  # seconds the chart was shifted by (song.ini delay); 0 for the demo world


def beats_per_bar(numerator: int, denominator: int) -> int:
    """Beats in a bar as pretty_midi counts beats: compound meters (6/8, 9/8, 12/8) beat in dotted notes."""
    del denominator  # the beat unit changes with it, the count per bar does not
    return numerator // 3 if numerator > 3 and numerator % 3 == 0 else numerator


def midi_beat_grid(midi: pretty_midi.PrettyMIDI, end: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(beats, downbeats, beats per bar) of a MIDI file's tempo map and time signatures, up to `end` s.

    pretty_midi stops at the file's last event; an audio file usually runs on (the last chord rings,
    an outro without notes), so the grid continues at the final tempo and meter up to `end`.
    """
    beats = np.asarray(midi.get_beats(), dtype=np.float64)
    downbeats = np.asarray(midi.get_downbeats(), dtype=np.float64)
    signatures = sorted(midi.time_signature_changes, key=lambda ts: ts.time)
    last = signatures[-1] if signatures else None
    per_bar = beats_per_bar(last.numerator, last.denominator) if last else 4
    if len(beats) and beats[-1] < end:
        _, tempi = midi.get_tempo_changes()
        quarter_bpm = float(tempi[-1]) if len(tempi) else 120.0
        bpm = pretty_midi.qpm_to_bpm(quarter_bpm, last.numerator, last.denominator) if last else quarter_bpm
        period = 60.0 / bpm
        extra = beats[-1] + period * np.arange(1, int(np.ceil((end - beats[-1]) / period)) + 1)
        # Bar positions continue from the last downbeat pretty_midi found.
        since_downbeat = (
            len(beats) - 1 - int(np.searchsorted(beats, downbeats[-1] - 1e-6)) if len(downbeats) else 0
        )
        positions = since_downbeat + np.arange(1, len(extra) + 1)
        downbeats = np.concatenate([downbeats, extra[positions % per_bar == 0]])
        beats = np.concatenate([beats, extra])
    keep = beats < end
    return beats[keep], downbeats[downbeats < end], per_bar


def grid_tempo(beats: np.ndarray) -> float:
    """BPM of the inter-beat interval the song holds longest (median), NaN for fewer than 2 beats."""
    return float(60.0 / np.median(np.diff(beats))) if len(beats) >= 2 else float("nan")


def audible_span(samples: np.ndarray, sample_rate: int, floor_db: float = SILENCE_DB) -> tuple[float, float]:
    """(start, end) seconds of the part of the audio within `floor_db` of its loud level."""
    hop = max(1, sample_rate // 10)
    count = len(samples) // hop
    if count == 0:
        return 0.0, len(samples) / sample_rate
    rms = np.sqrt(np.mean(np.square(samples[: count * hop], dtype=np.float64).reshape(count, hop), axis=1))
    level = 20 * np.log10(rms + 1e-10)
    loud = np.flatnonzero(level > np.percentile(level, 95) - floor_db)
    return float(loud[0] * hop / sample_rate), float((loud[-1] + 1) * hop / sample_rate)


def _within(times: np.ndarray, start: float, end: float) -> np.ndarray:
    return times[(times >= start) & (times < end)]


def song_delay(ini: Path) -> float:
    """song.ini's `delay` in seconds (0 when absent or empty); FoF reads it as integer milliseconds."""
    if not ini.is_file():
        return 0.0
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(ini.read_bytes().decode("utf-8", errors="replace"))
    except configparser.Error as error:
        raise TruthError(f"{ini}: not a readable song.ini ({error})") from error
    raw = parser.get("song", "delay", fallback="").strip()
    if not raw:
        return 0.0
    try:
        return float(raw) / 1000.0
    except ValueError as error:
        raise TruthError(f"{ini}: delay {raw!r} is not a number of milliseconds") from error


def song_stems(folder: Path) -> list[Path]:
    """The stems FoF would play for a song folder; a stem the same size as song.ogg is a copy (FoF skips it)."""
    stems = [folder / name for name in FOF_STEMS if (folder / name).is_file()]
    song = folder / "song.ogg"
    if song in stems:
        size = song.stat().st_size
        stems = [song] + [stem for stem in stems if stem != song and stem.stat().st_size != size]
    return stems


def mix_stems(stems: list[Path], out: Path, sample_rate: int = MIX_RATE) -> Path:
    """Sum the stems (as the game plays them, at equal volume) into one mono FLAC, peak-normalised."""
    from viml.demo.world.media_out import write_audio
    from viml.engine.media import read_audio

    tracks = [read_audio(stem, sample_rate) for stem in stems]
    mix = np.zeros(max(len(track) for track in tracks), np.float32)
    for track in tracks:
        mix[: len(track)] += track
    peak = float(np.abs(mix).max())
    if peak > 0.99:  # the stems sum past full scale; level does not matter for beats, clipping would
        mix *= 0.99 / peak
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.stem + ".partial" + out.suffix)
    write_audio(partial, np.repeat(mix[:, None], 2, axis=1), sample_rate)
    partial.replace(out)
    return out


def _mix_path(folder: Path, stems: list[Path], mix_dir: Path) -> Path:
    """A single stem is used as it is; several get a mix, cached under a name that changes with them."""
    key = hashlib.sha1(
        "|".join(
            f"{stem.resolve()}:{stem.stat().st_size}:{stem.stat().st_mtime_ns}" for stem in stems
        ).encode()
    ).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{folder.parent.name}-{folder.name}")
    return mix_dir / f"{name}-{key}.flac"


def fof_song_folders(root: Path = FOF_SONGS) -> list[Path]:
    """Every song folder (one with notes.mid) under `root`, sorted."""
    return sorted(path.parent for path in Path(root).rglob("notes.mid"))


def load_frets_on_fire_song(folder: Path, mix_dir: Path) -> TrueBeats:
    """A FoF song's chart grid, shifted by its delay, on its (mixed) audio; the mix is cached in `mix_dir`."""
    from viml.engine.media import read_audio

    folder = Path(folder)
    stems = song_stems(folder)
    if not stems:
        raise TruthError(f"{folder}: no audio ({', '.join(FOF_STEMS)})")
    try:
        midi = pretty_midi.PrettyMIDI(str(folder / "notes.mid"))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as error:
        raise TruthError(f"{folder / 'notes.mid'}: not a readable MIDI file ({error})") from error
    delay = song_delay(folder / "song.ini")
    if len(stems) == 1:
        audio = stems[0]
    else:
        audio = _mix_path(folder, stems, Path(mix_dir))
        if not audio.is_file():
            mix_stems(stems, audio)
    samples = read_audio(audio, 22050)
    duration = len(samples) / 22050
    start, end = audible_span(samples, 22050)
    # The chart grid covers chart times [0, duration - delay): shifted, exactly the audio's [delay, duration).
    beats, downbeats, per_bar = midi_beat_grid(midi, duration - delay)
    beats, downbeats = beats + delay, downbeats + delay
    beats, downbeats = _within(beats, start, end), _within(downbeats, start, end)
    name = f"{folder.parent.name}/{folder.name}"
    return TrueBeats(name, audio, beats, downbeats, grid_tempo(beats), per_bar, duration, delay)


def load_frets_on_fire(mix_dir: Path, root: Path = FOF_SONGS, limit: int | None = None) -> list[TrueBeats]:
    """Every FoF song under `root` (the Debian packages' folder by default), at most `limit`."""
    folders = fof_song_folders(root)
    if not folders:
        raise TruthError(
            f"no Frets on Fire songs under {root}; install fretsonfire-songs-muldjord and "
            "fretsonfire-songs-sectoid (scripts/system-deps.sh)"
        )
    return [load_frets_on_fire_song(folder, mix_dir) for folder in folders[:limit]]


def demo_piece_midi(piece) -> pretty_midi.PrettyMIDI:
    """The MIDI a demo-world piece was rendered from: composed again from its attributes and seed.

    `render.render_attributes` composes with `np.random.default_rng([seed, 1])`; the same call here gives
    the same notes (the world's samples are reproducible for the same reason).
    """
    from viml.demo.world.compose import compose

    return compose(piece.attributes, piece.seconds, np.random.default_rng([piece.seed, 1]))


def load_demo_world(root: Path, limit: int | None = None) -> list[TrueBeats]:
    """True beats of a demo world's pieces, from each piece's MIDI, trimmed to its length."""
    from viml.demo.world.generate import load_world

    world = load_world(root)
    songs = []
    for piece in world.pieces[:limit]:
        beats, downbeats, per_bar = midi_beat_grid(demo_piece_midi(piece), piece.seconds)
        songs.append(
            TrueBeats(
                piece.id, world.music_path(piece), beats, downbeats, grid_tempo(beats), per_bar, piece.seconds
            )
        )
    return songs


def shifted(song: TrueBeats, shift: float) -> TrueBeats:
    """The song's grid moved by `shift` seconds (kept within the audio)."""
    beats = _within(song.beats + shift, 0.0, song.duration)
    downbeats = _within(song.downbeats + shift, 0.0, song.duration)
    return replace(song, beats=beats, downbeats=downbeats)


def grid_offset(
    samples: np.ndarray,
    sample_rate: int,
    beats: Iterable[float],
    max_shift: float | None = None,
    step: float = 0.002,
) -> tuple[float, float]:
    """How well a beat grid sits on the audio's onsets: (best shift in s, z there).

    z is the mean of the z-scored onset strength (librosa spectral flux, 2.9 ms hops at 22050 Hz) at
    the shifted beats, over shifts within +-`max_shift` (default: half a beat, which also tries the
    off-beats). On audio whose true grid is known (the demo world) the best shift near the grid comes
    out at +10..+21 ms: the flux's own lag behind a note's start.
    """
    import librosa

    beats = np.asarray(list(beats), dtype=np.float64)
    if len(beats) < 2:
        return float("nan"), float("nan")
    hop = max(1, round(sample_rate * 64 / 22050))
    envelope = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=hop, n_fft=1024)
    envelope = (envelope - envelope.mean()) / (envelope.std() + 1e-9)
    rate = sample_rate / hop
    limit = max_shift if max_shift is not None else float(np.median(np.diff(beats))) / 2
    shifts = np.arange(-limit, limit + step / 2, step)
    scores = np.full(len(shifts), np.nan)
    for i, shift in enumerate(shifts):
        frames = np.round((beats + shift) * rate).astype(np.int64)
        frames = frames[(frames >= 0) & (frames < len(envelope))]
        if len(frames):
            scores[i] = envelope[frames].mean()
    best = int(np.nanargmax(scores))
    return float(shifts[best]), float(scores[best])
