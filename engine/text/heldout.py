"""Held-out query descriptions: how a person might ask for music with these tags, in wording that no
training text generator uses (not data2text's templates, not the stand-in language model's).

The retrieval benchmark queries a model trained on synthesised text with these, so a model cannot win
by memorising its training templates. They draw on the concepts' `paraphrases` (which the training
writers never use) part of the time, and on their own sentence frames always.
"""

from __future__ import annotations

import random

from viml.engine.text.tagset import DEFAULT_THRESHOLD, ActiveConcept, TagProbabilities, active_concepts
from viml.engine.text.wording import Rng, as_random, capitalize_first, join_list, pick, with_article

PARAPHRASE_RATE = 0.6
OPENINGS = ("", "Looking for ", "I need ", "Give me ", "Find me ", "Searching for ")
GENRE_FRAMES = ("some {x}", "something in {a_x} vein", "{a_x} number", "{x}-leaning stuff")
MOOD_FRAMES = ("{x} in character", "that feels {x}", "{x}-sounding", "of a {x} nature")
TEMPO_FRAMES = ("{x} pacing", "at {a_x} clip", "taken {x}")
INSTRUMENT_FRAMES = ("{x} up front", "played on {x}", "where {x} dominate", "{x} in the mix")
VOICE_FRAMES = ("{x} at the mic", "voiced by {x}", "{x} over it")
NO_VOICE = ("no singer at all", "purely wordless", "nobody singing")
ERA_FRAMES = ("a throwback to {x}", "straight out of {x}", "{x} flavour")
OTHER_FRAMES = ("plus {x}", "and {x} too")


def heldout_description(
    tag_probabilities: TagProbabilities, rng: Rng = None, threshold: float = DEFAULT_THRESHOLD
) -> str:
    return heldout_from_concepts(active_concepts(tag_probabilities, threshold), rng)


def heldout_from_concepts(facts: list[ActiveConcept], rng: Rng = None) -> str:
    if not facts:
        raise ValueError("a held-out description needs at least one concept")
    rng = as_random(rng)
    groups: dict[str, list[str]] = {}
    no_voice = False
    for fact in facts:
        if fact.concept.negative:
            no_voice = True
            continue
        groups.setdefault(fact.concept.type, []).append(_word(fact, rng))
    head = (
        _fill(pick(rng, GENRE_FRAMES), groups["genre"][:2])
        if "genre" in groups
        else pick(rng, ("music", "something", "a cue"))
    )
    parts = []
    for kind, frames in (
        ("mood", MOOD_FRAMES),
        ("tempo", TEMPO_FRAMES),
        ("instrument", INSTRUMENT_FRAMES),
        ("vocals", VOICE_FRAMES),
        ("era", ERA_FRAMES),
        ("other", OTHER_FRAMES),
    ):
        if kind in groups:
            parts.append(_fill(pick(rng, frames), groups[kind][:3]))
    if no_voice:
        parts.append(pick(rng, NO_VOICE))
    rng.shuffle(parts)
    opening = pick(rng, OPENINGS)
    text = opening + head + (": " if not opening and parts and rng.random() < 0.5 else ", " if parts else "")
    return capitalize_first(text + ", ".join(parts)).rstrip(", ") + "."


def _word(fact: ActiveConcept, rng: random.Random) -> str:
    paraphrases = fact.concept.paraphrases
    if paraphrases and rng.random() < PARAPHRASE_RATE:
        return pick(rng, paraphrases)
    return fact.concept.text


def _fill(frame: str, words: list[str]) -> str:
    x = join_list(words)
    return frame.format(x=x, a_x=with_article(x))
