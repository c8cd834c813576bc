"""Batch tagging of music files (what `viml tag` runs): discovery, per-file results, a resumable cache, outputs."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir
from viml.engine.media.extensions import AUDIO_EXTENSIONS
from viml.engine.music.runtime import MusicModel, is_silent
from viml.engine.tags import genres_and_moods, merged, tags_above


@dataclass
class TrackResult:
    path: str
    status: str  # "tagged", "silent" or "error"
    reason: str = ""
    duration: float = 0.0
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    probabilities: dict[str, list[list[float]]] = field(default_factory=dict)  # vocabulary -> [S][T]
    tag_names: dict[str, list[str]] = field(default_factory=dict)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {v: np.asarray(p, dtype=np.float32) for v, p in self.probabilities.items()}

    def track_tags(self, threshold: float) -> list[tuple[str, str, float]]:
        return tags_above(self._arrays(), self.tag_names, threshold) if self.status == "tagged" else []

    def segment_tags(self, index: int, threshold: float) -> list[tuple[str, str, float]]:
        return tags_above(self._arrays(), self.tag_names, threshold, index)

    def genres_and_moods(self, threshold: float) -> tuple[list[str], list[str]]:
        return genres_and_moods(self.track_tags(threshold))

    def table_row(self, threshold: float, top: int) -> str:
        if self.status == "error":
            return f"{self.path}\terror: {self.reason}"
        if self.status == "silent":
            return f"{self.path}\t{self.duration:7.1f} s\tsilent: no tags"
        best = merged(self.track_tags(threshold))  # a tag in both vocabularies shows once
        tags = ", ".join(f"{t} {p:.2f}" for t, p in best[:top]) or "(no tag above threshold)"
        return f"{self.path}\t{self.duration:7.1f} s\t{tags}"


def find_audio_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(audio files under the paths, recursively and sorted; paths that do not exist). Files are kept as given."""
    found: list[Path] = []
    missing: list[Path] = []
    for path in paths:
        if path.is_dir():
            for folder, _, names in os.walk(path):
                found += [Path(folder) / n for n in names if Path(n).suffix.lower() in AUDIO_EXTENSIONS]
        elif path.exists():
            found.append(path)
        else:
            missing.append(path)
    unique = sorted(dict.fromkeys(found), key=lambda p: os.fsencode(str(p)))
    return unique, missing


class ResultCache:
    """Append-only JSON-lines results keyed by (absolute path, size, mtime, model, segment length).

    Each result is flushed as soon as it is known, so a run stopped at any point resumes; a torn last
    line (killed mid-write) is simply ignored.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        self.entries[entry["key"]] = entry["result"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run

    @classmethod
    def open(cls, model: MusicModel, segment_seconds: float) -> ResultCache:
        files = sorted(entry["sha256"] for entry in model.manifest.get("models", {}).values())
        model_id = hashlib.sha256("".join(files).encode()).hexdigest()[:16]
        folder = cache_dir() / "music_tags"
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / f"musicnn-{model_id}-{segment_seconds:g}s.jsonl")

    @staticmethod
    def key(path: Path) -> str | None:
        try:
            info = path.stat()
        except OSError:
            return None
        return f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"

    def get(self, path: Path) -> TrackResult | None:
        key = self.key(path)
        entry = self.entries.get(key) if key else None
        return TrackResult(**{**entry, "path": str(path)}) if entry else None

    def put(self, path: Path, result: TrackResult) -> None:
        key = self.key(path)
        if key is None or result.status == "error":  # errors are retried next time
            return
        self.entries[key] = asdict(result)
        self._handle.write(json.dumps({"key": key, "result": asdict(result)}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def tag_file(
    model: MusicModel, path: Path, segment_seconds: float, cache: ResultCache | None = None
) -> TrackResult:
    """Tag one file; every failure becomes an "error" result with a reason, never an exception."""
    from viml.engine.media import read_audio

    cached = cache.get(path) if cache else None
    if cached is not None:
        return cached
    sample_rate = model.front_end.sample_rate
    try:
        audio = read_audio(path, sample_rate)
        duration = audio.size / sample_rate
        if audio.size < model.front_end.n_fft:
            raise UserFacingError(f"too short to tag ({duration:.3f} s of audio)")
        if is_silent(audio):
            result = TrackResult(str(path), "silent", "the audio is silent", duration)
        else:
            music = model.analyze(audio, sample_rate, segment_seconds)
            result = TrackResult(
                str(path),
                "tagged",
                duration=duration,
                starts=[float(s) for s in music.starts],
                ends=[float(e) for e in music.ends],
                probabilities={v: np.round(p, 4).tolist() for v, p in music.tag_probabilities.items()},
                tag_names=music.tag_names,
            )
    except (UserFacingError, ValueError, MemoryError) as error:
        reason = getattr(error, "reason", None) or str(error)
        return TrackResult(str(path), "error", reason)
    if cache is not None:
        cache.put(path, result)
    return result


def plan_file_tags(result: TrackResult, threshold: float, apply: bool) -> str | None:
    """Describe (or, with apply, perform) adding the track's genres/moods to the file; one line."""
    from viml.engine.music.filetags import TagValues, TagWriteError, plan, write_tags

    if result.status != "tagged":
        return None
    genres, moods = result.genres_and_moods(threshold)
    if not genres and not moods:
        return f"{result.path}: no genre or mood above {threshold}; nothing to write"
    new = TagValues(tuple(genres), tuple(moods))
    try:
        current, after = plan(result.path, new)
        if after == current:
            return f"{result.path}: tags already present"
        if apply:
            write_tags(result.path, new)
    except TagWriteError as error:
        return f"{error}"
    verb = "wrote" if apply else "would write"
    return f"{result.path}: {verb} genre {list(after.genres)} mood {list(after.moods)}"


def _tag_list(tags: list[tuple[str, str, float]]) -> list[dict]:
    return [{"vocabulary": v, "tag": t, "probability": round(p, 4)} for v, t, p in tags]


def write_json(path: Path, results: list[TrackResult], model: MusicModel, threshold: float) -> None:
    tracks = []
    for result in results:
        genres, moods = result.genres_and_moods(threshold)
        tracks.append(
            {
                "path": result.path,
                "status": result.status,
                "reason": result.reason,
                "duration_seconds": round(result.duration, 3),
                "tags": _tag_list(result.track_tags(threshold)),
                "genres": genres,
                "moods": moods,
                "segments": [
                    {"start": s, "end": e, "tags": _tag_list(result.segment_tags(i, threshold))}
                    for i, (s, e) in enumerate(zip(result.starts, result.ends, strict=True))
                ],
            }
        )
    document = {
        "model": {name: entry["sha256"] for name, entry in model.manifest.get("models", {}).items()},
        "threshold": threshold,
        "tracks": tracks,
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_csv(path: Path, results: list[TrackResult], threshold: float) -> None:
    """One row per segment (tags as "name probability; ..."); failed or silent files get one row."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", "segment", "start", "end", "tags", "reason"])
        for result in results:
            if result.status != "tagged":
                writer.writerow([result.path, result.status, "", "", "", "", result.reason])
                continue
            for i, (start, end) in enumerate(zip(result.starts, result.ends, strict=True)):
                tags = "; ".join(f"{t} {p:.2f}" for _, t, p in result.segment_tags(i, threshold))
                writer.writerow([result.path, result.status, i, f"{start:.2f}", f"{end:.2f}", tags, ""])
