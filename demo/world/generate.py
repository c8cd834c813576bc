"""Generate and load a demo world: folder with music/, video/ and world.json.

Plan first (cheap, in this process: every piece's attributes, length, seed, paths, names) and save the
plan as world.partial.json, then make the media in a process pool. world.json is written last, through
a temporary file, so a folder holds either a complete world or a marked unfinished one, which
`overwrite` cleans up (deleting only the files the plan lists). Same seed -> identical world.json and identical audio samples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from viml.core.errors import UserFacingError
from viml.demo.world.attributes import PieceAttributes, ground_truth_tags, sample_attributes
from viml.demo.world.styles import STYLES

# 2: legato rock power chords (rock audio differs from version 1 worlds).
GENERATOR_VERSION = 2
WORLD_FORMAT = "viml-world"
WORLD_FILE = "world.json"
# The plan, written before any media: marks a folder whose generation is running or was interrupted.
PARTIAL_FILE = "world.partial.json"
AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "ogg", "m4a")
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}  # the rest is train
# One piece in TAG_EVERY keeps a bare file: real folders have untagged files too.
TAG_EVERY = 4

_ADJECTIVES = ("Amber", "Silver", "Quiet", "Neon", "Golden", "Hollow", "Velvet", "Distant", "Broken",
               "Electric", "Crimson", "Paper", "Northern", "Falling", "Bright", "Midnight")  # fmt: skip
_NOUNS = ("Harbour", "Engines", "Meadow", "Skyline", "Lanterns", "Rivers", "Static", "Orchard",
          "Satellites", "Tides", "Window", "Highway", "Embers", "Garden", "Signals", "Horizon")  # fmt: skip
_ARTISTS = ("The Paper Kites Ensemble", "Nora Vale", "Static Orchard", "Juniper Lane", "Kilo Mandala",
            "Ada Brightwater", "The Low Hours", "Marlow Trio")  # fmt: skip


class WorldError(UserFacingError):
    """A demo world folder is missing, incomplete, or would overwrite something."""


@dataclass(frozen=True)
class Piece:
    id: str
    title: str
    artist: str
    music: str  # path relative to the world folder
    video: str  # path relative to the world folder
    seconds: float
    seed: int
    split: str  # train | val | test
    tagged: bool  # whether the music file carries title/artist/genre/BPM tags
    attributes: PieceAttributes
    tags: list[str]  # ground-truth descriptive words

    def to_json(self) -> dict:
        data = {key: getattr(self, key) for key in self.__dataclass_fields__ if key != "attributes"}
        data["attributes"] = self.attributes.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict) -> Piece:
        return cls(**{**data, "attributes": PieceAttributes.from_json(data["attributes"])})


@dataclass
class World:
    root: Path
    seed: int
    sample_rate: int
    fps: int
    width: int
    height: int
    video_audio: bool
    pieces: list[Piece] = field(default_factory=list)
    version: int = GENERATOR_VERSION

    def music_path(self, piece: Piece) -> Path:
        return self.root / piece.music

    def video_path(self, piece: Piece) -> Path:
        return self.root / piece.video

    def split(self, name: str) -> list[Piece]:
        return [piece for piece in self.pieces if piece.split == name]

    def missing_files(self) -> list[Path]:
        paths = [self.root / p for piece in self.pieces for p in (piece.music, piece.video)]
        return [path for path in paths if not path.is_file()]

    def to_json(self) -> dict:
        return {
            "format": WORLD_FORMAT,
            "generator_version": self.version,
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "video": {"fps": self.fps, "width": self.width, "height": self.height, "audio": self.video_audio},
            "pieces": [piece.to_json() for piece in self.pieces],
        }


def _plan(count: int, seed: int, seconds: tuple[float, float]) -> list[Piece]:
    rng = np.random.default_rng([seed, 0])
    order = np.random.default_rng([seed, 3]).permutation(count)
    held_out = {
        name: int(round(fraction * count)) if count >= 3 else 0 for name, fraction in SPLIT_FRACTIONS.items()
    }
    held_out = {name: max(1, n) if count >= 3 else 0 for name, n in held_out.items()}
    splits = ["train"] * count
    for position, index in enumerate(order):
        if position < held_out["test"]:
            splits[index] = "test"
        elif position < held_out["test"] + held_out["val"]:
            splits[index] = "val"
    pieces = []
    for index in range(count):
        attributes = sample_attributes(rng)
        length = round(float(rng.uniform(*seconds)) * 2) / 2  # half-second steps
        piece_id = f"piece-{index:04d}"
        extension = AUDIO_EXTENSIONS[index % len(AUDIO_EXTENSIONS)]
        title = f"{_ADJECTIVES[rng.integers(len(_ADJECTIVES))]} {_NOUNS[rng.integers(len(_NOUNS))]}"
        pieces.append(
            Piece(
                id=piece_id,
                title=title,
                artist=_ARTISTS[int(rng.integers(len(_ARTISTS)))],
                music=f"music/{piece_id}.{extension}",
                video=f"video/{piece_id}.mp4",
                seconds=length,
                seed=int(rng.integers(2**31)),
                split=splits[index],
                tagged=index % TAG_EVERY != TAG_EVERY - 1,
                attributes=attributes,
                tags=ground_truth_tags(attributes),
            )
        )
    return pieces


def _make_piece(
    root: Path, piece: Piece, sample_rate: int, fps: int, size: tuple[int, int], video_audio: bool
):
    """Render and write one piece's music file and video (runs in a worker process)."""
    from viml.demo.world.media_out import write_audio, write_tags, write_video
    from viml.demo.world.render import render_attributes
    from viml.demo.world.video import render_frames

    audio = render_attributes(piece.attributes, piece.seconds, piece.seed, sample_rate)
    music_path = root / piece.music
    write_audio(music_path, audio, sample_rate)
    if piece.tagged:
        genre = STYLES[piece.attributes.style].genre
        write_tags(music_path, piece.title, piece.artist, genre, piece.attributes.tempo)
    frames = render_frames(piece.attributes, piece.seconds, piece.seed, fps, *size)
    write_video(root / piece.video, frames, fps, audio if video_audio else None, sample_rate)
    return piece.id


def generate_world(
    out_dir: str | Path,
    pieces: int = 300,
    seed: int = 0,
    seconds: tuple[float, float] = (20.0, 40.0),
    sample_rate: int = 24000,
    fps: int = 12,
    size: tuple[int, int] = (160, 120),
    video_audio: bool = False,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> World:
    """Write a world of `pieces` music tracks + videos into `out_dir` and return it.

    `size` is (width, height) of the videos (even numbers, for H.264 4:2:0). `video_audio` puts the music
    on the video's sound track, like a music video. `workers` defaults to the CPU count; 1 runs inline.
    """
    root = Path(out_dir)
    _check_arguments(root, pieces, seconds, sample_rate, fps, size, overwrite)
    if overwrite:
        _remove_world_files(root)
    (root / "music").mkdir(parents=True, exist_ok=True)
    (root / "video").mkdir(parents=True, exist_ok=True)
    world = World(root, seed, sample_rate, fps, size[0], size[1], video_audio, _plan(pieces, seed, seconds))
    _write_json(root / PARTIAL_FILE, world.to_json())
    jobs = [(root, piece, sample_rate, fps, size, video_audio) for piece in world.pieces]
    workers = max(1, min(workers or os.cpu_count() or 1, pieces))
    done = 0
    if workers == 1:
        for job in jobs:
            _make_piece(*job)
            done += 1
            if progress:
                progress(done, pieces)
    else:
        # spawn, not fork: the caller may hold threads (Qt, onnxruntime) that fork would copy broken.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_make_piece, *zip(*jobs, strict=True), chunksize=4):
                done += 1
                if progress:
                    progress(done, pieces)
    _write_json(root / WORLD_FILE, world.to_json())
    (root / PARTIAL_FILE).unlink()
    return world


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n")
    temporary.replace(path)


def _check_arguments(root: Path, pieces, seconds, sample_rate, fps, size, overwrite: bool) -> None:
    if pieces < 1:
        raise WorldError(f"a world needs at least one piece, got {pieces}")
    if not 1.0 <= seconds[0] <= seconds[1]:
        raise WorldError(f"piece length range must satisfy 1 <= min <= max seconds, got {seconds}")
    if sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
        raise WorldError(f"unsupported sample rate {sample_rate}")
    if fps < 1 or size[0] < 16 or size[1] < 16 or size[0] % 2 or size[1] % 2:
        raise WorldError(f"video needs fps >= 1 and an even size of at least 16x16, got {fps} fps {size}")
    if root.exists() and not root.is_dir():
        raise WorldError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if (root / WORLD_FILE).is_file():
            if not overwrite:
                raise WorldError(f"{root} already holds a world; pass overwrite (--force) to replace it")
        elif (root / PARTIAL_FILE).is_file():
            if not overwrite:
                raise WorldError(f"{root} holds an unfinished world; pass overwrite (--force) to replace it")
        else:
            raise WorldError(f"{root} is not empty and holds no world; choose an empty or new folder")


def _remove_world_files(root: Path) -> None:
    """Delete the files a previous (complete or unfinished) world lists, and its JSON; nothing else."""
    for name in (WORLD_FILE, PARTIAL_FILE):
        path = root / name
        if not path.is_file():
            continue
        try:
            listed = [
                piece[key] for piece in json.loads(path.read_text())["pieces"] for key in ("music", "video")
            ]
        except (ValueError, KeyError, TypeError):
            listed = []  # unreadable: its files get overwritten by name where the new plan reuses them
        for relative in listed:
            target = (root / str(relative)).resolve()
            # Only inside the world's own media folders, whatever a hand-edited JSON says.
            if target.parent in ((root / "music").resolve(), (root / "video").resolve()):
                target.unlink(missing_ok=True)
        path.unlink()


def load_world(directory: str | Path) -> World:
    """Read a world written by `generate_world`; raises `WorldError` if it is missing or malformed."""
    root = Path(directory)
    path = root / WORLD_FILE
    if not path.is_file():
        raise WorldError(f"{root}: no {WORLD_FILE} here; generate one with `viml world generate {root}`")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != WORLD_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {WORLD_FORMAT!r}")
        if data["generator_version"] > GENERATOR_VERSION:
            raise ValueError(f"written by a newer generator (version {data['generator_version']})")
        video = data["video"]
        return World(
            root=root,
            seed=int(data["seed"]),
            sample_rate=int(data["sample_rate"]),
            fps=int(video["fps"]),
            width=int(video["width"]),
            height=int(video["height"]),
            video_audio=bool(video["audio"]),
            pieces=[Piece.from_json(piece) for piece in data["pieces"]],
            version=int(data["generator_version"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise WorldError(f"{path}: not a valid world file ({error})") from error
