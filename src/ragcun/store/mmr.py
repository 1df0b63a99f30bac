"""Maximal marginal relevance on Euclidean distance (shared by the LlamaIndex and LangChain stores).

Similarity is the negative Euclidean distance, so the greedy step picks the candidate ``c`` maximising

    lambda_mult * (-||q - c||) + (1 - lambda_mult) * min_{s in selected} ||c - s||,

i.e. close to the query and far from what is already selected; both terms are in the same units.
``lambda_mult = 1`` is plain nearest-neighbour order, ``0`` is maximal diversity.
"""

from __future__ import annotations

import numpy as np

from ragcun.index.protocol import check_k


def check_mmr_args(k: object, fetch_k: object, lambda_mult: object) -> tuple[int, int, float]:
    """``k`` and ``fetch_k`` as positive ints, ``lambda_mult`` as a number in [0, 1]; clear ``ValueError`` otherwise."""
    if (isinstance(lambda_mult, bool) or not isinstance(lambda_mult, (int, float, np.integer, np.floating))
            or not 0.0 <= lambda_mult <= 1.0):
        raise ValueError(f"lambda_mult must be a number in [0, 1]; got {lambda_mult!r}")
    return check_k(k), check_k(fetch_k, "fetch_k"), float(lambda_mult)


def mmr_select(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float = 0.5) -> list[int]:
    """Indices into ``candidates`` (M, D) of up to ``k`` MMR picks for ``query`` (D,), in pick order."""
    k, _, lambda_mult = check_mmr_args(k, 1, lambda_mult)
    cand = np.asarray(candidates, dtype=np.float64)
    if len(cand) == 0:
        return []
    to_query = np.linalg.norm(cand - np.asarray(query, dtype=np.float64)[None, :], axis=1)
    nearest_selected = np.full(len(cand), np.inf)
    chosen: list[int] = []
    for _ in range(min(k, len(cand))):
        diversity = np.where(np.isinf(nearest_selected), 0.0, nearest_selected)
        gain = -lambda_mult * to_query + (1.0 - lambda_mult) * diversity
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        nearest_selected = np.minimum(nearest_selected, np.linalg.norm(cand - cand[pick], axis=1))
    return chosen
