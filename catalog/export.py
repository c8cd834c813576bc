"""CSV and JSON exports of the catalog's tags and of suggestions."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from viml.catalog.retrieval import DEFAULT_TAG_THRESHOLD
from viml.catalog.store import Catalog

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
    names = catalog.tag_names()
    tracks = catalog.connection.execute(
        "SELECT path, title, artist, album, genre, bpm, duration, format, hash FROM tracks ORDER BY path"
    ).fetchall()
    rows = []
    for path, title, artist, album, genre, bpm, duration, file_format, content_hash in tracks:
        segments = catalog.connection.execute(
            "SELECT start, end, tags FROM segments WHERE hash = ? ORDER BY idx", (content_hash,)
        ).fetchall()
        probabilities = np.stack([np.frombuffer(s[2], dtype=np.float32) for s in segments])
        if per_segment:
            for (start, end, _), row in zip(segments, probabilities, strict=True):
                rows.append({"path": path, "start": start, "end": end, "tags": _tags(names, row, threshold)})
        else:
            rows.append(
                {
                    "path": path, "title": title, "artist": artist, "album": album, "genre": genre,
                    "bpm": bpm, "duration": duration, "format": file_format,
                    "tags": _tags(names, probabilities.mean(axis=0), threshold),
                }
            )  # fmt: skip
    return rows


def _tags(names: list[str], probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    order = np.argsort(-probabilities)
    return {names[i]: round(float(probabilities[i]), 4) for i in order if probabilities[i] >= threshold}


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
