"""Exact Euclidean ranking of in-memory vectors: every query against every document, no index.

The one exact L2 top-k of ragcun's training and evaluation (the metrics, the distillation teacher,
the calibration pairs). Distances are computed in float64 as ``‖q‖² − 2 q·d + ‖d‖²`` (one matrix
product per block of queries), and equal distances are ordered by the lower document row, so the
same inputs always give the same ranking.
Queries are processed in blocks of at most ``max_block`` distances, which bounds the memory used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_BLOCK = 1 << 22
"""Default bound on the distances held at once (queries per block × documents; 32 MiB of float64)."""


def _matrix(x: Any, what: str) -> np.ndarray:
    """``x`` (a NumPy array, a CPU tensor, nested lists) as a finite float64 (N, D) array, or a ``ValueError``."""
    m = np.asarray(x, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows of vectors); got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{what} hold NaN or infinite values")
    return m


def _pair(queries: Any, docs: Any) -> tuple[np.ndarray, np.ndarray]:
    q, d = _matrix(queries, "queries"), _matrix(docs, "docs")
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]} but docs have {d.shape[1]}")
    return q, d


def _squared(q: np.ndarray, d: np.ndarray, d_sq: np.ndarray) -> np.ndarray:
    """(len(q), len(d)) squared distances, clipped at 0 (rounding can make the expansion slightly negative)."""
    out = (q * q).sum(1)[:, None] - 2.0 * (q @ d.T) + d_sq[None, :]
    return np.maximum(out, 0.0, out=out)


def squared_distances(queries: Any, docs: Any) -> np.ndarray:
    """(Q, N) float64 squared Euclidean distances of every query row to every document row."""
    q, d = _pair(queries, docs)
    return _squared(q, d, (d * d).sum(1))


def _top_k(d2: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` smallest values, smallest first, equal values by lower column."""
    n = d2.shape[1]
    if k >= n:
        cols = np.broadcast_to(np.arange(n), d2.shape)
        return np.lexsort((cols, d2), axis=1)
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(d2, part, 1).max(1)
    # rows where a value equal to the k-th is left out: argpartition chose among the ties arbitrarily
    tied = (d2 <= kth[:, None]).sum(1) > k
    for row in np.flatnonzero(tied):
        part[row] = np.lexsort((np.arange(n), d2[row]))[:k]
    vals = np.take_along_axis(d2, part, 1)
    order = np.lexsort((part, vals), axis=1)
    return np.take_along_axis(part, order, 1)


def nearest(queries: Any, docs: Any, k: int, *, max_block: int = MAX_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest document rows of each query row by Euclidean distance, nearest first.

    Returns ``(rows, squared)``: int64 (Q, k') document row numbers and their float64 squared
    distances, ``k' = min(k, N)``; equal distances come in document-row order. ``queries`` (Q, D)
    and ``docs`` (N, D) may be NumPy arrays or CPU tensors. Raises ``ValueError`` for ``k < 1``, an
    empty ``docs``, mismatched dimensions, non-finite values or ``max_block < 1``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    if isinstance(max_block, bool) or not isinstance(max_block, int) or max_block < 1:
        raise ValueError(f"max_block must be an integer >= 1; got {max_block!r}")
    q, d = _pair(queries, docs)
    if not len(d):
        raise ValueError("docs is empty: nothing to rank")
    k = min(int(k), len(d))
    d_sq = (d * d).sum(1)
    step = max(1, max_block // len(d))
    rows = np.empty((len(q), k), dtype=np.int64)
    squared = np.empty((len(q), k), dtype=np.float64)
    for start in range(0, len(q), step):
        block = _squared(q[start:start + step], d, d_sq)
        top = _top_k(block, k)
        rows[start:start + step] = top
        squared[start:start + step] = np.take_along_axis(block, top, 1)
    return rows, squared
