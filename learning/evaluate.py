"""Held-out edits ranked the way search ranks: each held-out clip against every catalogued track.

Pool: every catalogued track analysed for the bundle's music model (distinct contents; duplicate files
count once). A query is the held-out clip's span through the bundle (`search.query.encode_query`, no
prompt unless one is given); a track scores its best window of as many segments as the clip has
(`search.ranking.window_scores`, the ranking of `viml suggest` before downbeat refinement and word
fusion). The rank is that of the track the editor chose; ties count against it. Recall@1/5/10 and the
median rank come from `training.metrics`, the same definitions as the paper's table.

`evaluate_model` ranks with a torch checkpoint on the same features (the learning curve trains many
models and exports none); the exported towers match it within the export's parity tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from viml.engine.vectors import normalize_rows
from viml.search.ranking import window_scores
from viml.training.metrics import RetrievalResult, summarize

if TYPE_CHECKING:
    from viml.catalog.store import Catalog
    from viml.engine.music.types import MusicSegments
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.learning.pairs import EditPair
    from viml.training.features import ItemFeatures
    from viml.training.model import ViML

POOL_WORDS = "every catalogued track"


@dataclass(frozen=True)
class Library:
    """Every catalogued content's segments in one retrieval space, stacked as the search stacks them."""

    hashes: list[str]
    starts: np.ndarray  # int64 [T]
    counts: np.ndarray  # int64 [T]
    embeddings: np.ndarray  # float32 [N, D], rows L2-normalised

    @property
    def size(self) -> int:
        return len(self.hashes)


def analysed_contents(catalog: Catalog, analysis_id: str) -> list[str]:
    """Content hashes of the catalogued tracks analysed under `analysis_id`, sorted, once each."""
    hashes = sorted({track.hash for track in catalog.tracks()})
    return [h for h in hashes if catalog.content_analyzer(h) == analysis_id]


def build_library(
    catalog: Catalog, hashes: Sequence[str], embed: Callable[[MusicSegments], np.ndarray]
) -> Library:
    rows = [normalize_rows(embed(catalog.music_segments(h))) for h in hashes]
    counts = np.array([len(r) for r in rows], np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return Library(list(hashes), starts, counts, np.concatenate(rows).astype(np.float32))


def rank_queries(library: Library, queries: Sequence[np.ndarray], truths: Sequence[str]) -> np.ndarray:
    """1-based rank of each query's true content among the library's."""
    position = {h: i for i, h in enumerate(library.hashes)}
    ranks = []
    for query, truth in zip(queries, truths, strict=True):
        best = window_scores(library.embeddings, library.starts, library.counts, query).best
        ranks.append(int((best >= best[position[truth]]).sum()))
    return np.asarray(ranks, np.int64)


def evaluate_bundle(
    bundle: RuntimeBundle,
    catalog: Catalog,
    pairs: Sequence[EditPair],
    truths: Sequence[str],
    prompts: Sequence[str | None] | None = None,
    influence: float = 0.5,
) -> RetrievalResult:
    """Rank each pair's music for its clip (and prompt, when given) with the bundle, as search does.

    A pair with a prompt and `influence` 1.0 (or a bundle that reads no pictures) is a prompt-only query."""
    from viml.search.query import encode_query
    from viml.search.spaces import retrieval_space

    space = retrieval_space(bundle)
    library = build_library(
        catalog, analysed_contents(catalog, bundle.analysis.analysis_id), space.embed_segments
    )
    _check_truths(library, truths)
    prompts = list(prompts) if prompts is not None else [None] * len(pairs)
    queries = []
    for pair, prompt in zip(pairs, prompts, strict=True):
        video = pair.video if bundle.reads_pictures and not (prompt and influence >= 1.0) else None
        queries.append(encode_query(bundle, video, pair.video_in, pair.video_out, prompt, influence))
    return summarize(rank_queries(library, queries, truths), library.size)


def evaluate_model(
    model: ViML,
    catalog: Catalog,
    analysis_id: str,
    items: Sequence[ItemFeatures],
    truths: Sequence[str],
    pool: Sequence[str] | None = None,
) -> RetrievalResult:
    """The same ranking with a torch checkpoint's towers on the pairs' features (no prompt), among the
    contents of `pool` (default: every content analysed under `analysis_id`)."""
    import torch

    model.eval()
    max_segments = model.config.max_segments

    @torch.inference_mode()
    def music_rows(segments: MusicSegments) -> np.ndarray:
        features = torch.from_numpy(np.ascontiguousarray(segments.embeddings, np.float32))
        windows = []
        for start in range(0, len(features), max_segments):  # as engine/runtime/towers.py feeds them
            window = features[None, start : start + max_segments]
            mask = torch.ones(window.shape[:2], dtype=torch.bool)
            windows.append(model.music_tower(window, mask)[0][0])
        return torch.cat(windows).numpy()

    @torch.inference_mode()
    def query_rows(item: ItemFeatures) -> np.ndarray:
        video = torch.from_numpy(np.ascontiguousarray(item.video, np.float32))[None]
        mask = torch.ones(video.shape[:2], dtype=torch.bool)
        text = torch.zeros(1, model.config.text_dim)
        return model.query_tower(video, mask, text, torch.tensor([False]))[0][0].numpy()

    contents = analysed_contents(catalog, analysis_id) if pool is None else pool
    library = build_library(catalog, contents, music_rows)
    _check_truths(library, truths)
    queries = [query_rows(item) for item in items]
    return summarize(rank_queries(library, queries, truths), library.size)


def _check_truths(library: Library, truths: Sequence[str]) -> None:
    missing = set(truths) - set(library.hashes)
    if missing:
        raise ValueError(f"{len(missing)} held-out tracks are not in the pool (analysed otherwise)")


def metrics_row(result: RetrievalResult) -> dict[str, float | int]:
    """Plain-word keys for reports and JSON."""
    return {
        "median rank": result.median_rank,
        "R@1": round(result.recall[1], 2),
        "R@5": round(result.recall[5], 2),
        "R@10": round(result.recall[10], 2),
        "queries": result.queries,
        "pool": result.pool_size,
    }
