"""InfoNCE against a hand computation, NULL-text substitution, and the metric code on known rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from viml.training.evaluate import pooled_ranks
from viml.training.loss import info_nce
from viml.training.metrics import chance, ranks_of_true_items, summarize
from viml.training.model import ViML, ViMLConfig


def test_info_nce_matches_hand_computation():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    music = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    temperature = 0.5
    # similarities: q0·m0 = 0.6, q0·m1 = 0.0, q1·m0 = 0.8, q1·m1 = 1.0
    s = [[0.6, 0.0], [0.8, 1.0]]

    def nll(positive: float, row: list[float]) -> float:
        return -math.log(math.exp(positive / temperature) / sum(math.exp(x / temperature) for x in row))

    forward = (nll(s[0][0], s[0]) + nll(s[1][1], s[1])) / 2  # query → music, rows
    backward = (nll(s[0][0], [s[0][0], s[1][0]]) + nll(s[1][1], [s[0][1], s[1][1]])) / 2  # music → query
    assert info_nce(query, music, temperature).item() == pytest.approx(forward + backward, rel=1e-6)


def test_info_nce_default_temperature_is_the_papers():
    query = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1)
    assert info_nce(query, query).item() == pytest.approx(info_nce(query, query, 0.03).item())


def tiny_model(text_dropout: float = 0.8) -> ViML:
    config = ViMLConfig(
        video_dim=6,
        text_dim=5,
        music_dim=4,
        width=16,
        heads=2,
        layers=1,
        fusion_layers=1,
        embed_dim=8,
        text_dropout=text_dropout,
    )
    return ViML(config)


def test_text_dropout_rate_in_training_and_none_at_inference():
    torch.manual_seed(0)
    model = tiny_model(text_dropout=0.8)
    present = torch.ones(20000, dtype=torch.bool)
    kept = model.train().apply_text_dropout(present).float().mean().item()
    assert kept == pytest.approx(0.2, abs=0.01)
    assert model.eval().apply_text_dropout(present).all()


def test_absent_text_means_the_null_embedding():
    torch.manual_seed(0)
    model = tiny_model().eval()
    video = torch.randn(2, 3, 6)
    mask = torch.ones(2, 3, dtype=torch.bool)
    absent = torch.zeros(2, dtype=torch.bool)
    # Whatever text is passed, an absent prompt gives the same query as passing NULL itself.
    _, with_garbage = model.query_tower(video, mask, torch.randn(2, 5), absent)
    null = model.null_text.detach().expand(2, 5)
    _, with_null = model.query_tower(video, mask, null, torch.ones(2, dtype=torch.bool))
    torch.testing.assert_close(with_garbage, with_null)
    _, with_text = model.query_tower(video, mask, torch.randn(2, 5), ~absent)
    assert not torch.allclose(with_text, with_null)


def test_padding_does_not_change_the_query():
    torch.manual_seed(0)
    model = tiny_model().eval()
    video = torch.randn(1, 2, 6)
    text, present = torch.randn(1, 5), torch.ones(1, dtype=torch.bool)
    _, short = model.query_tower(video, torch.ones(1, 2, dtype=torch.bool), text, present)
    padded = torch.cat([video, torch.randn(1, 3, 6)], 1)
    mask = torch.tensor([[True, True, False, False, False]])
    _, long = model.query_tower(padded, mask, text, present)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)


def test_ranks_and_recall_on_known_rankings():
    similarity = np.array(
        [
            [0.9, 0.1, 0.2, 0.0],  # truth best → rank 1
            [0.5, 0.4, 0.6, 0.0],  # two above → rank 3
            [0.1, 0.2, 0.3, 0.0],  # best → rank 1
        ]
    )
    ranks = ranks_of_true_items(similarity)
    assert ranks.tolist() == [1, 3, 1]
    result = summarize(ranks, pool_size=4, recall_at=(1, 2, 3))
    assert result.recall == {1: pytest.approx(200 / 3), 2: pytest.approx(200 / 3), 3: 100.0}
    assert result.median_rank == 1.0


def test_ties_rank_against_the_query():
    assert ranks_of_true_items(np.zeros((3, 3))).tolist() == [3, 3, 3]


def test_chance_row_matches_the_paper():
    row = chance(2000)
    assert row.recall[1] == pytest.approx(0.05)
    assert row.recall[5] == pytest.approx(0.25)
    assert row.recall[10] == pytest.approx(0.50)
    assert row.median_rank == pytest.approx(1000.5)


def test_pooled_ranks_use_exact_pool_size_and_cover_every_query():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(23, 8))
    ranks, pool = pooled_ranks(embeddings, embeddings + 0.01 * rng.normal(size=(23, 8)), pool_size=10)
    assert pool == 10
    assert (ranks >= 1).all() and (ranks <= 10).all()
    assert (ranks == 1).mean() > 0.9
    _, all_pool = pooled_ranks(embeddings, embeddings, pool_size=2000)
    assert all_pool == 23


def test_a_prompt_without_video_gives_a_finite_query_that_follows_the_text():
    torch.manual_seed(0)
    model = tiny_model().eval()
    no_video, mask = torch.zeros(2, 1, 6), torch.zeros(2, 1, dtype=torch.bool)
    texts, present = torch.randn(2, 5), torch.ones(2, dtype=torch.bool)
    segments, pooled = model.query_tower(no_video, mask, texts, present)
    assert torch.isfinite(segments).all() and torch.isfinite(pooled).all()
    assert not torch.allclose(pooled[0], pooled[1])  # different prompts, different queries
