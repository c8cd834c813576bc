"""One entry point for training and `viml synth`: tagged items in, training texts out.

Files: a tagged collection is JSONL, one item a line, `{"id": "...", "tags": {"MTT": {"piano": 0.81},
"MSD": {...}}}`; synthesised texts are JSONL, `{"id": "...", "method": "...", "texts": ["...", ...]}`.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from viml.core.errors import UserFacingError
from viml.engine.text import data2text as data2text_module
from viml.engine.text import heldout, prompt2text
from viml.engine.text.llm import ChatClient
from viml.engine.text.tagset import (
    DEFAULT_THRESHOLD,
    TagDataError,
    TagProbabilities,
    active_concepts,
    active_tags,
)
from viml.engine.text.wording import Rng, as_random

log = logging.getLogger(__name__)

METHODS = ("tags", "data2text", "prompt2text")
QUERY_METHODS = ("heldout",)  # evaluation only: never train on these


class TextFileError(UserFacingError):
    """A tagged collection or texts file cannot be read."""


def tags_text(
    tag_probabilities: TagProbabilities, rng: Rng = None, threshold: float = DEFAULT_THRESHOLD
) -> str:
    """The paper's "tags" text: the tags above the threshold, shuffled, joined with commas."""
    names = [name for name, _ in active_tags(tag_probabilities, threshold)]
    as_random(rng).shuffle(names)
    return ", ".join(names)


def synthesize(
    tag_probabilities: TagProbabilities,
    method: str,
    rng: Rng = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    client: ChatClient | None = None,
    exemplars: list[prompt2text.Exemplar] | None = None,
) -> str:
    """One text for one item. prompt2text needs a `client` (see `llm.LLMConfig.from_env`)."""
    rng = as_random(rng)
    if method == "tags":
        return tags_text(tag_probabilities, rng, threshold)
    facts = active_concepts(tag_probabilities, threshold)
    if method == "data2text":
        return data2text_module.describe(facts, rng)
    if method == "heldout":
        return heldout.heldout_from_concepts(facts, rng)
    if method == "prompt2text":
        if client is None:
            raise ValueError("prompt2text needs a ChatClient")
        return prompt2text.describe(facts, client, rng, exemplars)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS + QUERY_METHODS)}")


def synthesize_collection(
    items: Mapping[str, TagProbabilities],
    method: str,
    per_item: int = 1,
    seed: int = 0,
    **kwargs,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Up to `per_item` distinct texts per item id, and the ids that got none with the reason.

    Each item has its own generator seeded from (seed, id), so adding items changes no other text.
    A few extra tries per item make up for duplicates (short tag lists have few distinct wordings).
    """
    texts: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for item_id, tag_probabilities in items.items():
        if not active_tags(tag_probabilities):
            failed[item_id] = "no tags"  # an empty tag mapping: nothing to describe
            continue
        rng = random.Random(f"{seed}:{method}:{item_id}")
        found: list[str] = []
        try:
            for _ in range(per_item * 3):
                text = synthesize(tag_probabilities, method, rng, **kwargs)
                if text and text not in found:
                    found.append(text)
                if len(found) == per_item:
                    break
        except prompt2text.TextRejectedError as error:
            log.info("%s: %s", item_id, error)
            if not found:
                failed[item_id] = str(error)
        if found:
            texts[item_id] = found
    return texts, failed


def read_tagged(path: Path) -> Iterator[tuple[str, TagProbabilities]]:
    """(id, tag probabilities) per line of a tagged-collection JSONL file, checked as it goes."""
    for number, record in _jsonl(path):
        item_id, tags = record.get("id"), record.get("tags")
        if not isinstance(item_id, str) or not item_id:
            raise TextFileError(f"{path}:{number}: each line needs a non-empty string 'id'")
        try:
            active_tags(tags)  # validates the shape and the probabilities
        except TagDataError as error:
            raise TextFileError(f"{path}:{number}: {error}") from None
        yield item_id, tags


def write_texts(
    path: Path, texts: Mapping[str, list[str]], method: str, extra: Mapping[str, dict] | None = None
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    with temporary.open("w", encoding="utf-8") as out:
        for item_id, item_texts in texts.items():
            record = {
                "id": item_id,
                "method": method,
                "texts": list(item_texts),
                **(extra or {}).get(item_id, {}),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    temporary.replace(path)  # never leave a half-written file under the real name


def load_texts(path: Path, methods: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Texts per item id from one texts JSONL file (lines of one id are merged, duplicates dropped).

    `methods` keeps only lines of those methods (e.g. to train on data2text from a mixed file).
    """
    wanted = set(methods) if methods is not None else None
    texts: dict[str, list[str]] = {}
    for number, record in _jsonl(path):
        item_id, item_texts = record.get("id"), record.get("texts")
        if (
            not isinstance(item_id, str)
            or not isinstance(item_texts, list)
            or not all(isinstance(t, str) for t in item_texts)
        ):
            raise TextFileError(
                f"{path}:{number}: each line needs 'id' (string) and 'texts' (list of strings)"
            )
        if wanted is not None and record.get("method") not in wanted:
            continue
        bucket = texts.setdefault(item_id, [])
        bucket.extend(t for t in item_texts if t.strip() and t not in bucket)
    return {item_id: bucket for item_id, bucket in texts.items() if bucket}


def sample_text(texts: Mapping[str, list[str]], item_id: str, rng: Rng = None) -> str | None:
    """Training's pick: one of the item's texts uniformly at random, None when it has none."""
    options = texts.get(item_id)
    if not options:
        return None
    rng = as_random(rng)
    return options[rng.randrange(len(options))]


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise TextFileError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise TextFileError(f"{path}:{number}: not JSON ({error})") from None
            if not isinstance(record, dict):
                raise TextFileError(f"{path}:{number}: each line must be a JSON object")
            yield number, record
