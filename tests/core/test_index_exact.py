"""Exact L2 ranking (ragcun.index.exact): the brute-force order, equal distances by document row, FAISS's exact
order where nothing ties, any block size, and clear errors."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from ragcun.index.exact import nearest, squared_distances


def _reference(q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance by direct difference, each row fully sorted by (distance, row)."""
    d2 = ((q[:, None, :].astype(np.float64) - d[None].astype(np.float64)) ** 2).sum(-1)
    rows = np.stack([np.lexsort((np.arange(len(d)), r))[:k] for r in d2])
    return rows, np.take_along_axis(d2, rows, 1)


@pytest.mark.parametrize("k", [1, 7, 50, 200])
@pytest.mark.parametrize("max_block", [1, 333, 1 << 22])
def test_nearest_is_the_brute_force_order_for_any_block_size(k, max_block):
    rng = np.random.default_rng(0)
    q, d = rng.standard_normal((23, 12)).astype(np.float32), rng.standard_normal((150, 12)).astype(np.float32)
    rows, squared = nearest(q, d, k, max_block=max_block)
    want_rows, want_sq = _reference(q, d, k)
    assert rows.shape == (23, min(k, 150)) and rows.dtype == np.int64
    assert np.array_equal(rows, want_rows)
    np.testing.assert_allclose(squared, want_sq, rtol=1e-9, atol=1e-9)
    assert (np.diff(squared, axis=1) >= 0).all()


def test_equal_distances_come_in_document_row_order_also_across_the_cut():
    d = np.array([[1.0, 0], [0, 1.0], [-1.0, 0], [0, -1.0], [2.0, 0], [1.0, 0]])  # rows 0-3 and 5 at distance 1 of 0
    q = np.zeros((3, 2))
    for k in (1, 2, 3, 5, 6):
        rows, squared = nearest(q, d, k)
        assert rows.tolist() == [[0, 1, 2, 3, 5, 4][:k]] * 3
        assert squared[0].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 4.0][:k]
    reversed_rows, _ = nearest(q, d[::-1].copy(), 3)  # the same vectors in another order: again the lowest rows first
    assert reversed_rows[0].tolist() == [0, 2, 3]


def test_nearest_agrees_with_faiss_exact_search():
    rng = np.random.default_rng(1)
    q, d = rng.standard_normal((40, 32)).astype(np.float32), rng.standard_normal((500, 32)).astype(np.float32)
    index = faiss.IndexFlatL2(32)
    index.add(d)
    want_sq, want_rows = index.search(q, 10)
    rows, squared = nearest(q, d, 10)
    assert np.array_equal(rows, want_rows)
    np.testing.assert_allclose(squared, want_sq, rtol=1e-4)


def test_nearest_takes_tensors_and_squared_distances_is_the_full_matrix():
    rng = np.random.default_rng(2)
    q, d = rng.standard_normal((4, 3)), rng.standard_normal((9, 3))
    rows, _ = nearest(torch.from_numpy(q), torch.from_numpy(d), 3)
    assert np.array_equal(rows, nearest(q, d, 3)[0])
    full = squared_distances(q, d)
    assert full.shape == (4, 9) and full.min() >= 0
    np.testing.assert_allclose(full, ((q[:, None] - d[None]) ** 2).sum(-1), rtol=1e-9)


@pytest.mark.parametrize("queries, docs, k, message", [
    (np.zeros((2, 3)), np.zeros((4, 3)), 0, "k must be an integer >= 1"),
    (np.zeros((2, 3)), np.zeros((4, 3)), 2.5, "k must be an integer >= 1"),
    (np.zeros((2, 3)), np.zeros((4, 2)), 1, "dimension 3 but docs have 2"),
    (np.zeros(3), np.zeros((4, 3)), 1, "queries must be a 2-D array"),
    (np.zeros((2, 3)), np.zeros((0, 3)), 1, "docs is empty"),
    (np.full((2, 3), np.nan), np.zeros((4, 3)), 1, "queries hold NaN or infinite"),
    (np.zeros((2, 3)), np.full((4, 3), np.inf), 1, "docs hold NaN or infinite"),
])
def test_nearest_refuses_bad_input_clearly(queries, docs, k, message):
    with pytest.raises(ValueError, match=message):
        nearest(queries, docs, k)
    with pytest.raises(ValueError, match="max_block must be"):
        nearest(np.zeros((1, 2)), np.zeros((1, 2)), 1, max_block=0)
