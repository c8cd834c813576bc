"""From tagger probabilities to the concepts a text should say, using the table in `tag_table.json`.

Every synthesis method starts here: keep the tags above a threshold, map them onto concepts (several
tags of one or two taggers can mean the same thing: MTT "female", "woman" and MSD "female vocalists"),
and resolve contradictions (a track cannot be both "slow" and "fast": the more probable one wins).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from viml.core.errors import UserFacingError
from viml.engine.tags import TAG_THRESHOLD as DEFAULT_THRESHOLD
from viml.engine.tags import merged

TABLE_PATH = Path(__file__).with_name("tag_table.json")
TYPES = ("genre", "mood", "tempo", "instrument", "vocals", "era", "sound", "other")

# Tag probabilities as the catalog writes them: {"MTT": {"piano": 0.81, ...}, "MSD": {...}}.
TagProbabilities = Mapping[str, Mapping[str, float]]


class TagDataError(UserFacingError):
    """Tag probabilities are malformed (not a mapping of vocabulary -> tag -> probability)."""


@dataclass(frozen=True)
class Concept:
    key: str
    type: str
    text: str
    mentions: tuple[str, ...] = ()
    paraphrases: tuple[str, ...] = ()
    contradicts: tuple[str, ...] = ()
    negative: bool = False


@dataclass(frozen=True)
class ActiveConcept:
    """A concept present in one item, with the tags that voted for it and their best probability."""

    concept: Concept
    probability: float
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class TagTable:
    concepts: dict[str, Concept]
    vocabularies: dict[str, dict[str, str]]  # vocabulary -> tag name -> concept key

    def concept_for(self, vocabulary: str, tag: str) -> Concept:
        """The concept of a tag; a tag the table does not know becomes an 'other' concept of its own."""
        key = self.vocabularies.get(vocabulary, {}).get(tag)
        if key is None:  # unknown vocabulary: look the tag up in every known one
            key = next((v[tag] for v in self.vocabularies.values() if tag in v), None)
        if key is not None:
            return self.concepts[key]
        wording = tag.strip().lower()
        return Concept(key=wording, type="other", text=wording, mentions=(wording,))

    def concept(self, key: str) -> Concept:
        return self.concepts[key]


@lru_cache(maxsize=4)
def load_table(path: Path = TABLE_PATH) -> TagTable:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    concepts = {}
    for key, entry in raw["concepts"].items():
        if entry["type"] not in TYPES:
            raise ValueError(f"{path}: concept {key!r} has unknown type {entry['type']!r}")
        concepts[key] = Concept(
            key=key,
            type=entry["type"],
            text=entry["text"],
            mentions=tuple(entry.get("mentions", ())),
            paraphrases=tuple(entry.get("paraphrases", ())),
            contradicts=tuple(entry.get("contradicts", ())),
            negative=bool(entry.get("negative", False)),
        )
    vocabularies = {name: dict(tags) for name, tags in raw["vocabularies"].items()}
    for name, tags in vocabularies.items():
        missing = sorted(set(tags.values()) - set(concepts))
        if missing:
            raise ValueError(f"{path}: vocabulary {name} maps to unknown concepts {missing}")
    return TagTable(concepts=concepts, vocabularies=vocabularies)


def validate_probabilities(tag_probabilities: object) -> dict[str, dict[str, float]]:
    """Check the shape and values; a flat {tag: p} mapping is accepted as one unnamed vocabulary."""
    if not isinstance(tag_probabilities, Mapping):
        raise TagDataError("tag probabilities must be a mapping of vocabulary -> {tag: probability}")
    values = list(tag_probabilities.values())
    if values and all(_is_number(v) for v in values):
        tag_probabilities = {"": tag_probabilities}
    clean: dict[str, dict[str, float]] = {}
    for vocabulary, tags in tag_probabilities.items():
        if not isinstance(tags, Mapping):
            raise TagDataError(f"tags of vocabulary {vocabulary!r} must be a mapping of tag -> probability")
        for tag, probability in tags.items():
            if not _is_number(probability) or not 0.0 <= float(probability) <= 1.0:
                raise TagDataError(
                    f"{vocabulary}/{tag}: probability must be a number in [0, 1], got {probability!r}"
                )
        clean[str(vocabulary)] = {str(tag): float(p) for tag, p in tags.items()}
    return clean


def active_tags(
    tag_probabilities: TagProbabilities, threshold: float = DEFAULT_THRESHOLD
) -> list[tuple[str, float]]:
    """Tags at or above the threshold, most probable first, duplicates across vocabularies merged.

    When nothing reaches the threshold the single most probable tag is kept, so every item gets a text.
    """
    found = [
        (vocabulary, tag, probability)
        for vocabulary, tags in validate_probabilities(tag_probabilities).items()
        for tag, probability in tags.items()
    ]
    best = merged([item for item in found if item[2] >= threshold])
    if not best and found:
        top = max(found, key=lambda item: item[2])
        return [(top[1].strip(), top[2])]
    return best


def active_concepts(
    tag_probabilities: TagProbabilities,
    threshold: float = DEFAULT_THRESHOLD,
    table: TagTable | None = None,
) -> list[ActiveConcept]:
    """Concepts above the threshold, most probable first, with contradictions resolved."""
    table = table or load_table()
    probabilities = validate_probabilities(tag_probabilities)
    merged: dict[str, ActiveConcept] = {}
    fallback: ActiveConcept | None = None
    for vocabulary, tags in probabilities.items():
        for tag, probability in tags.items():
            concept = table.concept_for(vocabulary, tag)
            candidate = ActiveConcept(concept, probability, (tag,))
            if fallback is None or probability > fallback.probability:
                fallback = candidate
            if probability < threshold:
                continue
            previous = merged.get(concept.key)
            if previous is None:
                merged[concept.key] = candidate
            else:
                merged[concept.key] = ActiveConcept(
                    concept, max(previous.probability, probability), previous.tags + (tag,)
                )
    if not merged and fallback is not None:
        merged[fallback.concept.key] = fallback
    ranked = sorted(merged.values(), key=lambda item: (-item.probability, item.concept.key))
    kept: list[ActiveConcept] = []
    for item in ranked:  # most probable first: a later contradicting concept loses
        if not any(item.concept.key in other.concept.contradicts for other in kept):
            kept.append(item)
    return kept


def concepts_from_names(names: Iterable[str], table: TagTable | None = None) -> list[Concept]:
    """Concepts for a list of tag names (any vocabulary), e.g. the tags of an exemplar."""
    table = table or load_table()
    seen: dict[str, Concept] = {}
    for name in names:
        key = name.strip()
        concept = table.concepts.get(key) or table.concept_for("", key)
        seen.setdefault(concept.key, concept)
    return list(seen.values())


_NEGATORS = {"no", "not", "without", "never", "zero", "lacks", "lacking", "free"}


def mentions(text: str, concept: Concept) -> bool:
    """Whether a text positively speaks of a concept ("no vocals" does not mention vocals)."""
    lowered = text.lower()
    for phrase in concept.mentions:
        for match in re.finditer(rf"(?<![\w-]){re.escape(phrase.lower())}(?![\w-])", lowered):
            before = re.findall(r"[\w']+", lowered[: match.start()])[-3:]
            if concept.negative or not _NEGATORS.intersection(before):
                return True
    return False


def contradictions(text: str, present: Iterable[Concept], table: TagTable | None = None) -> list[str]:
    """Concept keys a text mentions although the item's tags rule them out."""
    table = table or load_table()
    present = list(present)
    present_keys = {concept.key for concept in present}
    found = []
    for concept in present:
        for key in concept.contradicts:
            if key not in present_keys and key in table.concepts and mentions(text, table.concepts[key]):
                found.append(key)
    return sorted(set(found))


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
