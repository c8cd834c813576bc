"""Track scores from window scores (search/ranking.py `pooled`) equal the brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from viml.search.ranking import POOLINGS, brute_force, pooled, window_scores

DEFINITIONS = {
    "best": lambda c: c.max(),
    "mean": lambda c: c.mean(),
    "top3": lambda c: np.sort(c)[::-1][:3].mean(),
    "best+mean": lambda c: (c.max() + c.mean()) / 2,
}


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("k", [1, 3])
def test_pooling_matches_its_definition(pooling, k) -> None:
    rng = np.random.default_rng(k)
    counts = np.array([5, 1, 3, 7, 2, 12])
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    embeddings = rng.standard_normal((int(counts.sum()), 8)).astype(np.float32)
    query = rng.standard_normal((k, 8)).astype(np.float32)
    scores = window_scores(embeddings, starts, counts, query)
    _, _, curves = brute_force(embeddings, starts, counts, query)
    expected = [DEFINITIONS[pooling](curve) for curve in curves]
    np.testing.assert_allclose(pooled(scores, starts, pooling), expected, atol=1e-5)


def test_unknown_pooling_is_refused() -> None:
    from viml.core.errors import UserFacingError
    from viml.search import SuggestRequest

    with pytest.raises(UserFacingError, match="pooling"):
        SuggestRequest(prompt="piano", pooling="median")
