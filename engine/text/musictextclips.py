"""Import the public YT8M-MusicTextClips annotations: human descriptions of 10 s music clips.

The release is CSV with a YouTube video id, the clip's time and a caption. Column names differ between
copies, so the usual spellings are accepted (see `COLUMNS`). A user who has the data can then:
- train or evaluate on the human captions (`write_texts(..., method="human")`, read by `load_texts`);
- use them as prompt2text exemplars, once the clips are tagged (`exemplars_from_captions`).
Item ids are the video ids (one annotated clip per video); several captions of one clip are merged.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from viml.core.errors import UserFacingError
from viml.engine.text.prompt2text import Exemplar
from viml.engine.text.tagset import DEFAULT_THRESHOLD, TagProbabilities, active_concepts

COLUMNS = {
    "id": ("video_id", "ytid", "youtube_id", "yt_id", "vid", "id"),
    "start": ("start", "start_s", "start_time", "time", "timestamp", "segment_start"),
    "end": ("end", "end_s", "end_time", "segment_end"),
    "caption": ("caption", "text", "description", "annotation", "captions"),
}
CLIP_SECONDS = 10.0


@dataclass(frozen=True)
class Caption:
    video_id: str
    start_s: float | None
    end_s: float | None
    text: str


def read_captions(path: Path) -> list[Caption]:
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise UserFacingError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        reader = csv.DictReader(handle)
        header = {name.strip().lower(): name for name in reader.fieldnames or []}
        columns = {
            key: next((header[n] for n in names if n in header), None) for key, names in COLUMNS.items()
        }
        if columns["id"] is None or columns["caption"] is None:
            raise UserFacingError(
                f"{path}: needs a video id column ({'/'.join(COLUMNS['id'])}) and a caption column "
                f"({'/'.join(COLUMNS['caption'])}); found {', '.join(header) or 'no header'}"
            )
        captions = []
        for number, row in enumerate(reader, start=2):
            video_id = (row.get(columns["id"]) or "").strip()
            text = " ".join((row.get(columns["caption"]) or "").split())
            if not video_id or not text:
                continue  # blank lines and unannotated rows carry nothing
            start = _seconds(row.get(columns["start"]) if columns["start"] else None, path, number)
            end = _seconds(row.get(columns["end"]) if columns["end"] else None, path, number)
            if end is None and start is not None:
                end = start + CLIP_SECONDS
            captions.append(Caption(video_id, start, end, text))
    if not captions:
        raise UserFacingError(f"{path}: no rows with both a video id and a caption")
    return captions


def captions_by_id(captions: list[Caption]) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for caption in captions:
        bucket = texts.setdefault(caption.video_id, [])
        if caption.text not in bucket:
            bucket.append(caption.text)
    return texts


def clip_times(captions: list[Caption]) -> dict[str, dict]:
    """Per id, where the described clip is: {"start_s": ..., "end_s": ...} (first caption's times)."""
    times: dict[str, dict] = {}
    for caption in captions:
        if caption.start_s is not None:
            times.setdefault(caption.video_id, {"start_s": caption.start_s, "end_s": caption.end_s})
    return times


def exemplars_from_captions(
    captions: list[Caption], tagged: Mapping[str, TagProbabilities], threshold: float = DEFAULT_THRESHOLD
) -> list[Exemplar]:
    """Exemplars pairing the tagger's concepts for a clip with its human caption (tagged clips only)."""
    exemplars = []
    for video_id, texts in captions_by_id(captions).items():
        if video_id not in tagged:
            continue
        keys = tuple(fact.concept.key for fact in active_concepts(tagged[video_id], threshold))
        exemplars.extend(Exemplar(keys, text) for text in texts)
    return exemplars


def _seconds(value: str | None, path: Path, number: int) -> float | None:
    """Seconds from '95', '95.5', '1:35' or '0:01:35'."""
    if value is None or not value.strip():
        return None
    try:
        seconds = 0.0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        raise UserFacingError(f"{path}:{number}: time {value!r} is not seconds or m:ss") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UserFacingError(f"{path}:{number}: time {value!r} is out of range")
    return seconds
