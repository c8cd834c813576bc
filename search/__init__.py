"""Search: the only place that knows how a track is scored (see searcher.py).

from viml.engine.runtime import open_bundle
from viml.search import Searcher, SuggestRequest

with Catalog(path) as catalog:
    result = Searcher(catalog, open_bundle()).suggest(SuggestRequest(prompt="calm piano, no drums"))
"""

from viml.search.filters import Filters
from viml.search.searcher import Searcher, SearchResult, SegmentHit, Suggestion, SuggestRequest

__all__ = ["Filters", "SearchResult", "Searcher", "SegmentHit", "SuggestRequest", "Suggestion"]
