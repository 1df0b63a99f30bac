"""Reciprocal-rank fusion (Cormack, Clarke, Büttcher, SIGIR 2009) of the two sides' candidate rankings."""

from __future__ import annotations

import numpy as np

DEFAULT_RRF_K = 60


def check_rrf_k(rrf_k: object) -> int:
    """``rrf_k`` (RRF's rank constant) if it is a positive integer, else a ``ValueError`` naming the argument."""
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, np.integer)) or rrf_k <= 0:
        raise ValueError(f"rrf_k (the reciprocal-rank fusion constant) must be a positive integer; got {rrf_k!r}")
    return int(rrf_k)


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``, highest first (ties keep the candidates' order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(1, len(order) + 1)
    return out


def rrf(dense_scores: np.ndarray, lexical_scores: np.ndarray, k: int = DEFAULT_RRF_K) -> np.ndarray:
    """``1 / (k + dense rank) + 1 / (k + lexical rank)`` of each candidate, in (0, 2 / (k + 1)].

    Both sides rank every candidate by its score; a candidate with BM25 score 0 (no query term) is
    absent from the lexical ranking and gets no lexical term, as in RRF over two result lists.
    """
    lexical = np.asarray(lexical_scores, dtype=np.float64)
    fused = 1.0 / (k + ranks(dense_scores))
    return fused + np.where(lexical > 0, 1.0 / (k + ranks(lexical)), 0.0)
