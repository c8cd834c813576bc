"""The library's top tags per track (desktop/backend.top_tags) give exactly what the tag module's
`strongest` gives over every column — threshold, one name across vocabularies, ties by name — while only
the columns that can win go through it."""

from __future__ import annotations

import numpy as np
from viml.desktop import backend
from viml.engine.tags import strongest


def reference(probabilities: np.ndarray, names: list[str], count: int) -> list[str]:
    return [tag.lower() for tag, _ in strongest(probabilities.mean(axis=0), names, top=count)]


def test_top_tags_match_the_tag_module_over_every_column():
    rng = np.random.default_rng(3)
    shared = [f"tag {i}" for i in range(40)]
    names = [f"MTT:{tag}" for tag in shared] + [f"MSD:{tag.title()}" for tag in shared[:25]]
    for trial in range(400):
        segments = int(rng.integers(1, 5))
        # From almost no tag over the threshold to nearly all; rounded so ties (also across the two
        # vocabularies, and at the cut) are common.
        scale = (trial % 8) / 7
        probabilities = np.round(rng.random((segments, len(names))) * scale + 0.05, 1).astype(np.float32)
        if trial % 5 == 0:  # one name strongest in both vocabularies
            probabilities[:, names.index("MSD:Tag 3")] = probabilities[:, names.index("MTT:tag 3")] = 0.95
        for count in (1, 3, 5):
            assert backend.top_tags(probabilities, names, count) == reference(probabilities, names, count)
    assert backend.top_tags(np.zeros((0, len(names)), np.float32), names) == []
