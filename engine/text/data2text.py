"""data2text: a zero-shot data-to-text pipeline in the spirit of Kasner & Dušek (2022).

Their pipeline turns each fact into a simple sentence with a template, then orders the sentences,
aggregates them, and compresses them into fluent text. We keep the same four stages, written as rules
over the tag table (no neural modules, so it runs anywhere and is exactly reproducible for a seed):

1. lexicalise  - one short sentence per concept, from several templates per concept type;
2. order       - the sentences follow one of several type orders (genre first, mood first, ...);
3. aggregate   - neighbouring sentences of the same type merge into one ("It features piano and cello.");
4. compress    - the sentences fuse into one description: genre, mood, tempo and "instrumental" become
                 a noun phrase, instruments, voices, era and the rest become clauses, and whatever does
                 not fit the sentence's word budget stays as an aggregated sentence after it.

Many templates per stage make the same tags come out in different words, which training needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from viml.engine.text.tagset import DEFAULT_THRESHOLD, ActiveConcept, TagProbabilities, active_concepts
from viml.engine.text.wording import Rng, as_random, capitalize_first, join_list, pick, with_article

# Stage 1 templates, per concept type. {x}: the wording (a list after aggregation), {a_x}: with an
# article, {noun}: a word for the music. Negative vocals ("no vocals") have their own sentences.
SENTENCE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "genre": (
        "This is {a_x} {noun}.",
        "The style is {x}.",
        "It is a piece of {x} music.",
        "It belongs to {x}.",
    ),
    "mood": ("It sounds {x}.", "The mood is {x}.", "It feels {x}.", "The atmosphere is {x}."),
    "tempo": ("The tempo is {x}.", "It moves at {a_x} pace.", "It is played at {a_x} tempo."),
    "instrument": (
        "It features {x}.",
        "{X} can be heard.",
        "The instrumentation includes {x}.",
        "It is played on {x}.",
    ),
    "vocals": ("It has {x}.", "{X} can be heard.", "It features {x}."),
    "no-vocals": ("It is instrumental.", "There are no vocals.", "It has no singing."),
    "era": ("It sounds like music from {x}.", "It recalls {x}.", "It has the sound of {x}."),
    "other": ("It has {x}.", "It comes with {x}.", "Notably, it has {x}."),
}

# Stage 2: type orders, as a writer might choose them.
ORDERINGS: tuple[tuple[str, ...], ...] = (
    ("genre", "mood", "tempo", "instrument", "vocals", "no-vocals", "era", "other"),
    ("mood", "genre", "tempo", "vocals", "no-vocals", "instrument", "other", "era"),
    ("genre", "tempo", "mood", "instrument", "other", "vocals", "no-vocals", "era"),
    ("tempo", "mood", "genre", "era", "instrument", "vocals", "no-vocals", "other"),
)

# Stage 4 wording: nouns for the head ("music" takes no article) and clause frames per type.
NOUNS = ("track", "song", "piece", "tune", "recording", "music")
CLAUSES: dict[str, tuple[str, ...]] = {
    "instrument": ("featuring {x}", "built around {x}", "led by {x}", "with {x}"),
    "vocals": ("with {x}", "carried by {x}", "and {x} on top"),
    "era": ("recalling {x}", "reminiscent of {x}", "in the style of {x}"),
    "other": ("with {x}", "built on {x}"),
}
HEAD_TYPES = ("genre", "mood", "tempo", "no-vocals")
MAX_ADJECTIVES = 3
MAX_GENRES = 2


@dataclass(frozen=True)
class Sentence:
    """A template and the facts it states; several facts once aggregated."""

    kind: str  # a concept type, or "no-vocals"
    template: str
    facts: tuple[ActiveConcept, ...]
    noun: str

    def realise(self) -> str:
        return _fill(self.template, [fact.concept.text for fact in self.facts], self.noun)


def kind_of(fact: ActiveConcept) -> str:
    return "no-vocals" if fact.concept.negative else fact.concept.type


def lexicalise(facts: list[ActiveConcept], rng: random.Random) -> list[Sentence]:
    """Stage 1: one sentence per fact."""
    sentences = []
    for fact in facts:
        kind = kind_of(fact)
        sentences.append(Sentence(kind, pick(rng, SENTENCE_TEMPLATES[kind]), (fact,), pick(rng, NOUNS[:-1])))
    return sentences


def order(sentences: list[Sentence], rng: random.Random) -> list[Sentence]:
    """Stage 2: sort by one of the type orders; within a type the most probable fact comes first."""
    ordering = pick(rng, ORDERINGS)
    return sorted(sentences, key=lambda s: (ordering.index(s.kind), -s.facts[0].probability))


def aggregate(sentences: list[Sentence]) -> list[Sentence]:
    """Stage 3: merge neighbouring sentences of one type, keeping the first one's template."""
    merged: list[Sentence] = []
    for sentence in sentences:
        if merged and merged[-1].kind == sentence.kind and sentence.kind != "no-vocals":
            last = merged[-1]
            merged[-1] = Sentence(last.kind, last.template, last.facts + sentence.facts, last.noun)
        else:
            merged.append(sentence)
    return merged


def compress(sentences: list[Sentence], rng: random.Random) -> str:
    """Stage 4: fuse the aggregated sentences into one description (two when it would run long)."""
    budget = rng.randint(14, 24)  # words in the fused sentence before the rest stays separate
    by_kind = {sentence.kind: sentence for sentence in sentences}
    genres = list(by_kind["genre"].facts) if "genre" in by_kind else []
    # Adjectives follow the chosen order (stage 2), so "slow, sad" and "sad, slow" both occur.
    adjectives = [f for s in sentences if s.kind in ("tempo", "mood") for f in s.facts]
    max_adjectives = rng.randint(2, MAX_ADJECTIVES)
    leftovers: list[Sentence] = []
    if len(genres) > MAX_GENRES:
        leftovers.append(_rest(by_kind["genre"], genres[MAX_GENRES:]))
        genres = genres[:MAX_GENRES]
    if len(adjectives) > max_adjectives:
        for kind in ("mood", "tempo"):
            extra = [f for f in adjectives[max_adjectives:] if kind_of(f) == kind]
            if extra:
                leftovers.append(_rest(by_kind[kind], extra))
        adjectives = adjectives[:max_adjectives]
    words = [fact.concept.text for fact in adjectives]
    if "no-vocals" in by_kind:
        words.append("instrumental")
    noun = pick(rng, NOUNS)
    head = " ".join(filter(None, [", ".join(words), join_list([g.concept.text for g in genres]), noun]))
    head = head if noun == "music" else with_article(head)

    clauses = []
    for sentence in sentences:
        if sentence.kind in HEAD_TYPES:
            continue
        used = {clause.split()[0] for clause in clauses}
        frames = [
            f for f in CLAUSES[sentence.kind] if f.split()[0] not in used and (clauses or f[:4] != "and ")
        ]
        frame = pick(rng, frames or ("with {x}",))
        clause = _fill(frame, [f.concept.text for f in sentence.facts], sentence.noun)
        if len((head + " " + " ".join(clauses + [clause])).split()) <= budget:
            clauses.append(clause)
        else:
            leftovers.append(sentence)
    fused = head + (" " + ", ".join(clauses) if clauses else "")
    parts = [capitalize_first(fused) + "."] + [capitalize_first(s.realise()) for s in leftovers]
    return " ".join(parts)


def describe(facts: list[ActiveConcept], rng: Rng = None) -> str:
    """The whole pipeline for facts already chosen from the tags."""
    if not facts:
        raise ValueError("data2text needs at least one concept")
    rng = as_random(rng)
    return compress(aggregate(order(lexicalise(facts, rng), rng)), rng)


def data2text(
    tag_probabilities: TagProbabilities, rng: Rng = None, threshold: float = DEFAULT_THRESHOLD
) -> str:
    return describe(active_concepts(tag_probabilities, threshold), rng)


def _rest(sentence: Sentence, facts: list[ActiveConcept]) -> Sentence:
    return Sentence(sentence.kind, sentence.template, tuple(facts), sentence.noun)


def _fill(template: str, texts: list[str], noun: str) -> str:
    x = join_list(texts)
    return template.format(x=x, X=capitalize_first(x), a_x=with_article(x), noun=noun)
