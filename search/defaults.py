"""The search's defaults, in a module that imports nothing (the CLI shows them in its help)."""

from __future__ import annotations

POOLINGS = ("best", "mean", "top3", "best+mean")  # a track's sound score from its windows (ranking.py)
WORDS_WEIGHT = 1.0  # fused weight of the library's words matched in full text (BM25)
MEANING_WEIGHT = 1.0  # fused weight of the prompt's meaning against each track's words
FUSION_K = 10.0  # reciprocal-rank fusion's smoothing (fusion.py)
