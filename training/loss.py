"""InfoNCE on cosine similarity, both directions summed (the paper's L = L_vt→m + L_m→vt)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(query: torch.Tensor, music: torch.Tensor, temperature: float = 0.03) -> torch.Tensor:
    """query [B,D], music [B,D], L2-normalised; row i of each is a positive pair, other rows negatives.

    Returns the sum of the mean cross-entropy of query→music and music→query.
    """
    logits = query @ music.T / temperature
    targets = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)
