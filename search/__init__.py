"""Search: the only place that knows how a track is scored (see searcher.py).

    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest

    with Catalog(path) as catalog:
        result = Searcher(catalog, open_bundle()).suggest(SuggestRequest(prompt="calm piano, no drums"))

The names below are imported when first used, so `viml.search.defaults` (what the CLI's help shows)
costs nothing to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Filters": "viml.search.filters",
    "SearchResult": "viml.search.searcher",
    "Searcher": "viml.search.searcher",
    "SegmentHit": "viml.search.searcher",
    "SuggestRequest": "viml.search.searcher",
    "Suggestion": "viml.search.searcher",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'viml.search' has no attribute {name!r}")
