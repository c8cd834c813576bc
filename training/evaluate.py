"""The paper's evaluation protocol: rank each query's true music among a pool of N.

Track level: N = 2000 (or all items when fewer). A query is a clip of up to `window_segments`
segments from the start of a held-out video, optionally with a text (the item's own synthesised text,
e.g. its tags); the candidates are the aligned music windows of the pool's items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from viml.training.features import ItemFeatures
from viml.training.metrics import RetrievalResult, ranks_of_true_items, summarize
from viml.training.model import ViML
from viml.training.train import make_batch

TRACK_LEVEL_POOL = 2000
CLIP_LEVEL_POOL = 500


@dataclass(frozen=True)
class EvalConfig:
    pool_size: int = TRACK_LEVEL_POOL
    window_segments: int = 3
    text_method: str | None = None  # None: query without text (the NULL embedding)
    seed: int = 0
    batch_size: int = 256


@torch.inference_mode()
def embed_pairs(model: ViML, items: list[ItemFeatures], config: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """→ (queries [Q,D], music [Q,D]); row i of both belongs to item i."""
    model.eval()
    device = next(model.parameters()).device
    methods = [config.text_method] if config.text_method else []
    rng = np.random.default_rng(config.seed)
    queries, music = [], []
    for start in range(0, len(items), config.batch_size):
        chunk = items[start : start + config.batch_size]
        batch = make_batch(
            chunk,
            rng,
            config.window_segments,
            methods,
            model.config.text_dim,
            start_at_zero=True,
            text_choice="first",
        )
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        _, query = model.query_tower(batch["video"], batch["mask"], batch["text"], batch["text_present"])
        _, track = model.music_tower(batch["music"], batch["mask"])
        queries.append(query.cpu().numpy())
        music.append(track.cpu().numpy())
    return np.concatenate(queries), np.concatenate(music)


def pooled_ranks(
    queries: np.ndarray, music: np.ndarray, pool_size: int, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Rank of each query's own music among a pool of `pool_size` (all items when fewer).

    Items are shuffled into disjoint pools; the queries left over after the last full pool are ranked in
    a pool made of the last `pool_size` shuffled items, so every query meets exactly `pool_size` candidates.
    Returns (ranks, the pool size used).
    """
    total = len(queries)
    pool_size = min(pool_size, total)
    order = np.random.default_rng(seed).permutation(total)
    ranks = np.zeros(total, np.int64)
    done = 0
    while done < total:
        pool = order[done : done + pool_size]
        if len(pool) < pool_size:  # leftovers: borrow earlier items as distractors
            pool = order[total - pool_size :]
        similarity = queries[pool] @ music[pool].T
        pool_ranks = ranks_of_true_items(similarity)
        new = np.isin(pool, order[done:])
        ranks[pool[new]] = pool_ranks[new]
        done += int(new.sum())
    return ranks, pool_size


def evaluate(model: ViML, items: list[ItemFeatures], config: EvalConfig) -> RetrievalResult:
    queries, music = embed_pairs(model, items, config)
    ranks, pool_size = pooled_ranks(queries, music, config.pool_size, config.seed)
    return summarize(ranks, pool_size)
