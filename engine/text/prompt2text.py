"""prompt2text: ask a language model to describe a tag list by analogy with human descriptions.

The prompt shows a few exemplar pairs (tags -> description) chosen by tag overlap with the item, then
the item's tags with an empty description for the model to complete. The answer is cleaned up and
rejected when it is empty, overlong, or contradicts the tags (says "vocals" for an instrumental).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from viml.core.errors import UserFacingError
from viml.engine.text.llm import ChatClient, Message
from viml.engine.text.tagset import (
    DEFAULT_THRESHOLD,
    ActiveConcept,
    Concept,
    TagProbabilities,
    active_concepts,
    concepts_from_names,
    contradictions,
)
from viml.engine.text.wording import Rng, as_random

EXEMPLARS_PATH = Path(__file__).with_name("exemplars.json")
SYSTEM_PROMPT = (
    "You describe short music clips for a video editor's music search. Given the tags a music tagger "
    "found in a clip, write one natural description of the music in the style of the examples, in one "
    "or two sentences. Say only what the tags support. Answer with the description alone."
)
EXEMPLARS_PER_PROMPT = 4
MAX_WORDS = 60
MAX_CHARS = 400


class TextRejectedError(UserFacingError):
    """Every answer of the language model for an item was rejected by the filters."""


@dataclass(frozen=True)
class Exemplar:
    tags: tuple[str, ...]
    description: str

    def concepts(self) -> list[Concept]:
        return concepts_from_names(self.tags)


def load_exemplars(path: Path | None = None) -> list[Exemplar]:
    """Exemplars from JSON ({"exemplars": [...]} or a list) or JSONL, each {"tags": [...], "description"}."""
    path = Path(path) if path is not None else EXEMPLARS_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserFacingError(f"{path}: cannot read exemplars ({error.strerror or error})") from None
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            records = data["exemplars"] if isinstance(data, dict) else data
        exemplars = [
            Exemplar(tuple(str(t) for t in r["tags"]), str(r["description"]).strip()) for r in records
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise UserFacingError(
            f"{path}: not an exemplar file ({error}); expected records with tags and description"
        ) from None
    exemplars = [e for e in exemplars if e.tags and e.description]
    if not exemplars:
        raise UserFacingError(f"{path}: holds no exemplar with both tags and a description")
    return exemplars


def tag_line(concepts: list[Concept]) -> str:
    return ", ".join(concept.text for concept in concepts)


def choose_exemplars(
    concepts: list[Concept], pool: list[Exemplar], rng: random.Random, count: int = EXEMPLARS_PER_PROMPT
) -> list[Exemplar]:
    """The exemplars sharing most concepts with the item (Jaccard), a little shuffled so that several
    texts for one item come from different prompts; the most similar comes last, next to the question."""
    keys = {concept.key for concept in concepts}

    def overlap(exemplar: Exemplar) -> float:
        other = {concept.key for concept in exemplar.concepts()}
        return len(keys & other) / len(keys | other) if keys | other else 0.0

    ranked = sorted(pool, key=lambda e: (-overlap(e), rng.random()))
    candidates = ranked[: count + 2]
    chosen = rng.sample(candidates, min(count, len(candidates)))
    return sorted(chosen, key=overlap)


def build_messages(concepts: list[Concept], exemplars: list[Exemplar]) -> list[Message]:
    shots = [f"Tags: {tag_line(e.concepts())}\nDescription: {e.description}" for e in exemplars]
    question = f"Tags: {tag_line(concepts)}\nDescription:"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(shots + [question])},
    ]


def parse_description(answer: str) -> str:
    """The description in a model's answer: no label, no continued pattern, no quotes, one paragraph."""
    text = answer.replace("\r\n", "\n").strip()
    text = re.split(r"(?im)^\s*tags\s*:", text)[0]  # the model went on to invent the next example
    text = re.sub(r"(?i)^\s*(?:\*\*)?description(?:\*\*)?\s*:\s*", "", text.strip())
    lines = text.split("\n")
    if len(lines) > 1 and lines[0].rstrip().endswith(":"):  # "Here is a description:" preamble
        text = "\n".join(lines[1:])
    paragraph = next((p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()), "")
    paragraph = " ".join(paragraph.split()).strip("*_ ")
    if len(paragraph) >= 2 and paragraph[0] in "\"'“" and paragraph[-1] in "\"'”":
        paragraph = paragraph[1:-1].strip()
    return paragraph


def rejection_reason(text: str, concepts: list[Concept], max_words: int = MAX_WORDS) -> str | None:
    """Why a parsed description cannot be used, or None when it can."""
    if not text or not re.search(r"[A-Za-z]", text):
        return "empty"
    if len(text.split()) > max_words or len(text) > MAX_CHARS:
        return "overlong"
    contradicted = contradictions(text, concepts)
    if contradicted:
        return "contradicts the tags: " + ", ".join(contradicted)
    return None


def describe(
    facts: list[ActiveConcept],
    client: ChatClient,
    rng: Rng = None,
    exemplars: list[Exemplar] | None = None,
    attempts: int = 3,
) -> str:
    """One accepted description; each new attempt uses a different exemplar draw (a new prompt)."""
    rng = as_random(rng)
    pool = exemplars if exemplars is not None else load_exemplars()
    concepts = [fact.concept for fact in facts]
    reasons = []
    for _ in range(attempts):
        messages = build_messages(concepts, choose_exemplars(concepts, pool, rng))
        text = parse_description(client.complete(messages))
        reason = rejection_reason(text, concepts)
        if reason is None:
            return text
        reasons.append(reason)
    raise TextRejectedError(
        f"language model answers for [{tag_line(concepts)}] rejected: {'; '.join(reasons)}"
    )


def prompt2text(
    tag_probabilities: TagProbabilities,
    client: ChatClient,
    rng: Rng = None,
    exemplars: list[Exemplar] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> str:
    return describe(active_concepts(tag_probabilities, threshold), client, rng, exemplars)


def write_exemplars(path: Path, exemplars: list[Exemplar]) -> None:
    """Exemplars as JSON that `load_exemplars` (and `viml synth --exemplars`) reads back."""
    records = [{"tags": list(e.tags), "description": e.description} for e in exemplars]
    Path(path).write_text(
        json.dumps({"exemplars": records}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
