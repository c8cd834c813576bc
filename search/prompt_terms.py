"""Prompt terms: per-concept weights and negations, applied through the tag probabilities.

Text embeddings are known to ignore negation ("no vocals" lands next to "vocals"), so a prompt is split
into the text that goes to the text encoder and *terms* on the tag table's concepts (engine/text/
tag_table.json: every MTT/MSD tag maps onto a concept such as `piano`, `vocals`, `sad`, `fast`):

    syntax                     term                     embedded text
    ------------------------   ----------------------   -------------
    piano^2  "string section"^1.5   boost piano by 2          "piano" stays in the text
    +piano                     boost piano by 1         "piano" stays
    -drums   -drums^2          suppress drums (1, 2)    removed
    no / not / without / non / never / minus / except X [, Y] [and|or Z]
                               suppress X (Y, Z)        removed
    plain mention ("sad piano") optional boost `mention_weight` (default 0), kept in the text
    plain mention of a measured concept ("slowly building", "bright", "calm then explosive")
                               boost it by 1                 kept in the text

A weight is a finite number > 0 (`piano^0.5`, `piano^3`): anything else after `^` (`^nan`, `^inf`, `^0`,
`^-1`, a bare `^`) is refused with a UserFacingError naming the token, rather than guessed at; use `-X`
or "no X" to suppress.

"no vocals" / "without singing" / "non-vocal" suppress any voice (the highest of the vocals, female and
male vocals and choir tags); "instrumental" boosts nothing unless weighted, like any plain mention;
"not instrumental" suppresses `instrumental`. Words that are no concept of the table are left to the
embedding (a negated unknown word is still removed from the text, since the embedding would read it as
a wish).

Ranking (viml/search/searcher.py): a segment s scores

    score(s) = cos(q, e_s) + TERM_SCALE · Σ_c w_c · p_c(s)

where p_c(s) is the concept's probability in that segment (the highest of the columns that map onto it:
the taggers' tags and the measured sound descriptors, engine/music/descriptors.py, scaled to 0..1 across
the library) and w_c the term's weight (negative for a suppression). A window of segments averages the sum, so a
clip query (K rows) is treated the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.text.tagset import TagTable, load_table

TERM_SCALE = 0.25  # one unit of weight moves a fully confident segment by a quarter of the cosine range
NEGATORS = frozenset({"no", "not", "without", "non", "never", "minus", "except", "nothing"})
NEGATION_REACH = 3  # words between a negator and the concept it negates ("no heavy drums")
ANY_VOCALS = "any vocals"  # pseudo-concept: the highest of every voice concept's tags
_VOCAL_FAMILY = ("vocals", "female vocals", "male vocals", "choir")
_WEIGHT = r"(?:\^(?:[\w+-]|\.(?=\w))*)?"  # ^ and whatever follows it (checked in _split_marks)
_TOKEN = re.compile(rf'[+-]?"[^"]+"{_WEIGHT}|[+-]?[\w&\'-]+{_WEIGHT}|[,;.!?]')


@dataclass(frozen=True)
class Term:
    concept: str  # key in the tag table
    weight: float  # > 0 boost, < 0 suppress
    source: str  # the words of the prompt it came from
    explicit: bool = True  # written with +, -, ^ or a negation (False: a plain mention)


@dataclass
class PromptTerms:
    prompt: str
    text: str  # what the text encoder should see ('' when nothing but terms is left)
    terms: list[Term] = field(default_factory=list)

    def weights(self, mention_weight: float = 0.0) -> dict[str, float]:
        """Concept -> summed weight; plain mentions count `mention_weight` each."""
        out: dict[str, float] = {}
        for term in self.terms:
            weight = term.weight if term.explicit else term.weight * mention_weight
            if weight:
                out[term.concept] = out.get(term.concept, 0.0) + weight
        return out

    def has_terms(self, mention_weight: float = 0.0) -> bool:
        return bool(self.weights(mention_weight))

    def segment_bias(
        self,
        tags: np.ndarray,
        tag_names: list[str],
        mention_weight: float = 0.0,
        scale: float = TERM_SCALE,
        table: TagTable | None = None,
    ) -> np.ndarray | None:
        """float32 [N]: scale · Σ_c w_c · p_c(s) for tag probabilities [N, T] with columns 'VOCAB:tag'.

        None when no term applies (no weight, or no column of the catalog maps onto a weighted concept).
        """
        weights = self.weights(mention_weight)
        if not weights:
            return None
        columns = concept_columns(tag_names, table)
        bias = np.zeros(tags.shape[0], np.float32)
        used = False
        for concept, weight in weights.items():
            found = columns.get(concept)
            if not found:
                continue
            probability = tags[:, found[0]] if len(found) == 1 else tags[:, found].max(axis=1)
            bias += np.float32(scale * weight) * probability
            used = True
        return bias if used else None

    def describe(self) -> str:
        """One line for the CLI: 'piano ×2, drums −1'."""
        return ", ".join(f"{c} {'+' if w > 0 else '−'}{abs(w):g}" for c, w in self.weights().items())


def concept_columns(tag_names: list[str], table: TagTable | None = None) -> dict[str, list[int]]:
    """Concept key -> the tag columns ('VOCAB:tag') that map onto it."""
    table = table or load_table()
    columns: dict[str, list[int]] = {}
    for index, name in enumerate(tag_names):
        vocabulary, _, tag = name.partition(":")
        key = table.concept_for(vocabulary, tag).key
        columns.setdefault(key, []).append(index)
        if key in _VOCAL_FAMILY:
            columns.setdefault(ANY_VOCALS, []).append(index)
    return columns


def parse_prompt(prompt: str | None, table: TagTable | None = None) -> PromptTerms:
    """Split a prompt into the text to embed and concept terms (see the module docstring)."""
    table = table or load_table()
    prompt = (prompt or "").strip()
    phrases = _phrase_index(table)
    longest = max((len(p.split()) for p in phrases), default=1)
    tokens = [m.group(0) for m in _TOKEN.finditer(prompt)]
    kept: list[str] = []
    terms: list[Term] = []
    negating = 0  # words left in the current negation's reach (0: not negating)
    just_negated = False  # the previous word was a negated concept: "and"/"or" carry the negation on
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ",;.!?":
            negating = 0
            kept.append(token)
            i += 1
            continue
        sign, core, weight = _split_marks(token)
        plain = sign is None and weight is None
        word = core.strip('"').lower()
        if plain and word in NEGATORS:
            negating = NEGATION_REACH + 1
            i += 1
            continue
        if plain and word in {"and", "or", "nor"} and just_negated:
            negating = NEGATION_REACH + 1  # "no drums or vocals": the negation carries over the list
            just_negated = False
            i += 1
            continue
        just_negated = False
        if plain and word.startswith("non-") and word[4:] in phrases:  # "non-vocal"
            sign, word = "-", word[4:]
        size, concept = 1, phrases.get(word)
        if plain and not core.startswith('"'):  # the longest table phrase starting here ("string section")
            for length in range(min(longest, len(tokens) - i), 1, -1):
                words = tokens[i : i + length]
                if all(re.fullmatch(r"[\w&'-]+", w) for w in words):
                    key = " ".join(w.lower() for w in words)
                    if key in phrases:
                        size, concept = length, phrases[key]
                        break
        source = " ".join(tokens[i : i + size]) if size > 1 else core.strip('"')
        negative = sign == "-" or negating > 0
        if concept is None:
            if negative:  # a negated word the table does not know: keep it out of the embedding all the same
                negating = max(negating - 1, 0)
            else:
                kept.append(source)
            i += size
            continue
        amount = weight if weight is not None else 1.0
        if negative:
            # "no vocals" rules out any voice: female, male, choir included.
            terms.append(Term(ANY_VOCALS if concept == "vocals" else concept, -amount, source))
            negating, just_negated = 0, True
        else:
            # A measured concept ("slowly building", "bright") counts when merely mentioned: the sound side
            # never reads it from the words, so only its term can bring it in.
            measured = table.concept(concept).type == "sound"
            terms.append(
                Term(concept, amount, source, explicit=sign == "+" or weight is not None or measured)
            )
            kept.append(source)
        i += size
    return PromptTerms(prompt=prompt, text=_tidy(" ".join(kept)), terms=terms)


def _split_marks(token: str) -> tuple[str | None, str, float | None]:
    """('+'|'-'|None, core, weight|None) of a token like '-drums^2' or '"string section"^1.5'."""
    sign = token[0] if token[:1] in "+-" and len(token) > 1 else None
    core = token[1:] if sign else token
    weight = None
    if "^" in core:
        core, _, number = core.rpartition("^")
        weight = float(number) if re.fullmatch(r"\d+(\.\d*)?|\.\d+", number) else math.nan
        if not (math.isfinite(weight) and weight > 0):  # ^nan, ^inf, ^0, ^-1, ^ and 400 digits
            shown = token if len(token) <= 40 else token[:37] + "..."
            raise UserFacingError(f"bad weight in {shown!r}: put a number > 0 after ^, e.g. {core[:30]}^2")
    return sign, core, weight


def _phrase_index(table: TagTable) -> dict[str, str]:
    """Lower-case phrase -> concept key. Phrases that carry their own negation ("no vocals") are left out:
    the parser reads them as a negated "vocals"."""
    index: dict[str, str] = {}
    for concept in table.concepts.values():
        for phrase in (*concept.mentions, concept.text, concept.key):
            key = phrase.lower()
            if key.split()[0] in NEGATORS:
                continue
            index.setdefault(key, concept.key)
    return index


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,;.!?])", r"\1", text)
    text = re.sub(r"([,;.!?])(\s*[,;.!?])+", r"\1", text)
    return text.strip(" ,;.!?")
