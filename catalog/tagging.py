"""Batch tagging (what `viml tag` runs): the files are scanned into the catalog, which holds every result;
here are the per-file results read back from it, the outputs (table, JSON, CSV) and file-tag writing."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.catalog.store import Catalog
from viml.engine.media.extensions import AUDIO_EXTENSIONS
from viml.engine.tags import genres_and_moods, merged, tags_above

if TYPE_CHECKING:
    from viml.engine.bundles.spec import AnalysisSpec


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


def results_from_catalog(catalog: Catalog, files: list[Path]) -> list[TrackResult]:
    """Each file's tagging result as the catalog holds it (the scan wrote it): tagged with its segments'
    tag probabilities, silent, or an error with the scan's reason."""
    from viml.catalog.store import path_key

    errors = {error["path"]: error for error in catalog.errors()}
    results = []
    for path in files:
        track = catalog.track(path)
        if track is not None:
            music = catalog.music_segments(track.hash)
            results.append(
                TrackResult(
                    str(path),
                    "tagged",
                    duration=float(track.duration or music.ends[-1]),
                    starts=[float(t) for t in music.starts],
                    ends=[float(t) for t in music.ends],
                    probabilities={v: np.round(p, 4).tolist() for v, p in music.tag_probabilities.items()},
                    tag_names=music.tag_names,
                )
            )
            continue
        error = errors.get(path_key(os.path.abspath(path)))
        if error is not None and error["kind"] == "silent":
            results.append(TrackResult(str(path), "silent", error["message"]))
        elif error is not None:
            results.append(TrackResult(str(path), "error", f"{error['kind']}: {error['message']}"))
        else:
            results.append(TrackResult(str(path), "error", "not catalogued (the scan skipped it)"))
    return results


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


def write_json(path: Path, results: list[TrackResult], spec: AnalysisSpec, threshold: float) -> None:
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
        "analysis": spec.analysis_id,
        "model": {"name": spec.music_model, "files": spec.music_model_files},
        "segment_seconds": spec.segment_seconds,
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
