"""Retrieval metrics of the paper's protocol: rank of the true item in a pool; Recall@K and median rank.

Pure numpy, so evaluation and benchmarks need no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECALL_AT = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalResult:
    pool_size: int
    queries: int
    recall: dict[int, float]  # K -> percent of queries whose true item ranks within the top K
    median_rank: float  # 1-based

    def row(self) -> dict[str, float]:
        return {
            "median rank": self.median_rank,
            **{f"R@{k}": self.recall[k] for k in sorted(self.recall)},
        }


def ranks_of_true_items(similarity: np.ndarray) -> np.ndarray:
    """similarity [Q, N] with the true item of query i at column i → 1-based rank per query.

    Ties count against the query (an item scoring equal to the truth ranks above it), so a constant
    scorer gets the worst rank rather than a lucky one.
    """
    if similarity.ndim != 2 or similarity.shape[0] > similarity.shape[1]:
        raise ValueError("similarity must be [Q, N] with Q <= N and the truth on the diagonal")
    truth = similarity[np.arange(similarity.shape[0]), np.arange(similarity.shape[0])]
    return (similarity >= truth[:, None]).sum(axis=1)


def summarize(ranks: np.ndarray, pool_size: int, recall_at: tuple[int, ...] = RECALL_AT) -> RetrievalResult:
    ranks = np.asarray(ranks)
    recall = {k: float(100.0 * np.mean(ranks <= k)) for k in recall_at}
    return RetrievalResult(pool_size, int(len(ranks)), recall, float(np.median(ranks)))


def chance(pool_size: int, recall_at: tuple[int, ...] = RECALL_AT) -> RetrievalResult:
    """Expected metrics of a random ranking of a pool of N, computed by the same definitions.

    A uniformly random rank r in 1..N gives Recall@K = K/N and median rank (N+1)/2 (the paper rounds
    N=2000 to a median rank of 1000).
    """
    ranks = np.arange(1, pool_size + 1)
    return summarize(ranks, pool_size, recall_at)
