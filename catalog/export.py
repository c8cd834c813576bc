"""CSV and JSON exports of the catalog's tags and of suggestions."""

from __future__ import annotations

import csv
import io
import json

from viml.catalog.store import Catalog
from viml.engine.tags import TAG_THRESHOLD as DEFAULT_TAG_THRESHOLD
from viml.engine.tags import tags_above

TRACK_FIELDS = ["path", "title", "artist", "album", "genre", "bpm", "duration", "format", "tags"]
SEGMENT_FIELDS = ["path", "start", "end", "tags"]
SUGGESTION_FIELDS = [
    "rank",
    "path",
    "score",
    "start",
    "end",
    "title",
    "artist",
    "genre",
    "bpm",
    "duration",
    "matched_tags",
]


def tag_rows(
    catalog: Catalog, per_segment: bool = False, threshold: float = DEFAULT_TAG_THRESHOLD
) -> list[dict]:
    """Per track (tags of the mean over its segments) or per segment: tags above threshold, strongest first."""
    rows = []
    for track in catalog.tracks():
        music = catalog.music_segments(track.hash)
        if per_segment:
            for index, (start, end) in enumerate(zip(music.starts, music.ends, strict=True)):
                tags = _tags(music.tag_probabilities, music.tag_names, threshold, index)
                rows.append({"path": track.path, "start": float(start), "end": float(end), "tags": tags})
        else:
            rows.append(
                {
                    "path": track.path, "title": track.title, "artist": track.artist, "album": track.album,
                    "genre": track.genre, "bpm": track.bpm, "duration": track.duration, "format": track.format,
                    "tags": _tags(music.tag_probabilities, music.tag_names, threshold),
                }
            )  # fmt: skip
    return rows


def _tags(probabilities: dict, names: dict, threshold: float, segment: int | None = None) -> dict[str, float]:
    return {f"{v}:{t}": round(p, 4) for v, t, p in tags_above(probabilities, names, threshold, segment)}


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False)


def to_csv(rows: list[dict], fields: list[str]) -> str:
    """Nested values (tags) become compact JSON in one cell, so the CSV stays one row per item."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )
    return buffer.getvalue()
