"""Why a track was suggested: the tags of its best window, the prompt's own words first."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from viml.engine.tags import TAG_THRESHOLD, strongest

if TYPE_CHECKING:
    from viml.catalog.store import Catalog

MATCHED_TAGS = 5


def matched_tags(
    catalog: Catalog,
    content_hash: str,
    first: int,
    last: int,
    prompt: str | None,
    threshold: float = TAG_THRESHOLD,
    top: int = MATCHED_TAGS,
) -> list[dict]:
    """Tags at or above threshold over segments first..last; tags the prompt mentions come first."""
    names = catalog.tag_names()
    if not names:
        return []
    probabilities = catalog.segment_tags(content_hash, first, last).mean(axis=0)
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
