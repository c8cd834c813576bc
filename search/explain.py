"""Why a track was suggested: the tags of its best window, the prompt's own words first."""

from __future__ import annotations

import re

import numpy as np
from viml.engine.tags import TAG_THRESHOLD, strongest

MATCHED_TAGS = 5


def matched_tags(
    rows: np.ndarray,
    names: list[str],
    prompt: str | None,
    threshold: float = TAG_THRESHOLD,
    top: int = MATCHED_TAGS,
) -> list[dict]:
    """Tags at or above threshold over a window's segments (tag probability `rows` [n, T] with columns
    'VOCAB:tag'); tags the prompt mentions come first."""
    if not names or len(rows) == 0:
        return []
    probabilities = np.asarray(rows, np.float32).mean(axis=0)
    words = set(re.findall(r"[a-z0-9]+", prompt.lower())) if prompt else set()
    found = [
        {
            "tag": tag,
            "probability": round(probability, 4),
            "in_prompt": bool(words) and set(re.findall(r"[a-z0-9]+", tag.lower())) <= words,
        }
        for tag, probability in strongest(probabilities, names, threshold)
    ]
    return sorted(found, key=lambda t: not t["in_prompt"])[:top]  # stable: probability order kept
