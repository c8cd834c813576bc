"""The search's defaults, in a module that imports nothing (the CLI shows them in its help)."""

from __future__ import annotations

POOLINGS = ("best", "mean", "top3", "best+mean")  # a track's sound score from its windows (ranking.py)
# Chosen on bench/search_set_2.json by bench/search.py (reported on the other set, never on the same):
WORDS_WEIGHT = 4.0  # the best full-text (BM25) match is worth this many standard deviations of sound
MEANING_WEIGHT = 2.0  # a perfect meaning match of the prompt and a track's words, the same
MEANING_FLOOR = 0.2  # cosine of prompt and a track's words under which the words say nothing
