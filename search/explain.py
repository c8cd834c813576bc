"""Why a track was suggested: the tags of its best window (the prompt's own words first), the track's
strongest tags when none reaches the threshold, and what each prompt term added to the best part."""

from __future__ import annotations

import re

import numpy as np
from viml.engine.tags import TAG_THRESHOLD, strongest
from viml.search.prompt_terms import TERM_SCALE, PromptTerms, concept_columns

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


def top_tags(rows: np.ndarray, names: list[str], top: int = 3) -> list[dict]:
    """A track's strongest tags over all its segments whatever their probability: what the results show
    when nothing in the best part reaches the threshold (real libraries often have no tag above it)."""
    if not names or len(rows) == 0:
        return []
    probabilities = np.asarray(rows, np.float32).mean(axis=0)
    return [{"tag": tag, "probability": round(p, 4)} for tag, p in strongest(probabilities, names, 0.0, top)]


def term_matches(
    terms: PromptTerms, rows: np.ndarray, names: list[str], mention_weight: float = 0.0
) -> list[dict]:
    """How each of the prompt's terms scored a part (segment rows [n, C] of the columns terms read,
    'MTT:piano' or 'SOUND:building'): the concept's probability there (the highest of its columns, mean
    over the part's segments) and what it added to the part's score (search/prompt_terms.py)."""
    weights = terms.weights(mention_weight)
    if not weights or len(rows) == 0:
        return []
    columns = concept_columns(names)
    mean = np.asarray(rows, np.float64).mean(axis=0)
    sources = {term.concept: term.source for term in terms.terms}
    found = []
    for concept, weight in weights.items():
        if not columns.get(concept):
            continue
        probability = float(mean[columns[concept]].max())
        found.append(
            {
                "concept": concept,
                "source": sources.get(concept, concept),
                "weight": round(weight, 4),
                "measured": any(names[c].startswith("SOUND:") for c in columns[concept]),
                "probability": round(probability, 4),
                "contribution": round(TERM_SCALE * weight * probability, 5),
            }
        )
    return found
