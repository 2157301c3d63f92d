"""Ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from rag.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k, unique_in_order


def test_ndcg_hand_computed() -> None:
    # Relevant a (gain 1) at rank 2 and c (gain 1) at rank 4; ideal puts both at ranks 1 and 2.
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["x", "a", "y", "c"], {"a": 1, "c": 1}, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "c"], {"a": 1, "c": 1}) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a": 1}) == 0.0
    # Cut at k: a relevant document at rank 3 does not count for nDCG@2.
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0


def test_ndcg_uses_graded_gains() -> None:
    # Gains 2 then 1 in the wrong order: dcg = 1/1 + 2/log2(3); ideal = 2/1 + 1/log2(3).
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}) == pytest.approx(expected)


def test_recall_and_mrr() -> None:
    relevant = {"a": 1, "b": 1, "c": 1, "d": 0}
    ranking = ["x", "a", "d", "b"]
    assert recall_at_k(ranking, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, relevant, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(ranking, relevant, 10) == pytest.approx(0.5)
    assert mrr_at_k(["x", "y", "a"], relevant, 2) == 0.0
    assert recall_at_k(ranking, {}, 10) == 0.0


def test_percentile_interpolates_like_numpy() -> None:
    values = [10.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3 + 0.85 * 7)
    assert percentile([], 50) == 0.0


def test_unique_in_order_turns_chunks_into_documents() -> None:
    assert unique_in_order(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]
