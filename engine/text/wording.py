"""Small English helpers shared by the text writers: lists, articles, capitals, seeded randomness."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
Rng = random.Random | np.random.Generator | int | None


def as_random(rng: Rng) -> random.Random:
    """One kind of generator inside the package; training passes numpy generators or seeds."""
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, np.random.Generator):
        return random.Random(int(rng.integers(0, 2**63 - 1)))
    return random.Random(rng)


def join_list(items: Sequence[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


_VOWEL_SOUNDING = ("R&B", "MTV", "80s", "8")


def with_article(phrase: str) -> str:
    """'a rock track', 'an ambient piece' (by the first letter; good enough for our wording)."""
    stripped = phrase.lstrip()
    vowel_sound = stripped[:1].lower() in ("a", "e", "i", "o", "u") or stripped.startswith(_VOWEL_SOUNDING)
    return f"{'an' if vowel_sound else 'a'} {phrase}"


def capitalize_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def pick(rng: random.Random, options: Sequence[T]) -> T:
    return options[rng.randrange(len(options))]
