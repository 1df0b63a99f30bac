"""Calibration pairs: the (Euclidean distance, relevant) pairs of each query's top hits, what a relevance
calibrator (:class:`ragcun.scoring.calibrator.RelevanceCalibrator`) is fitted and measured on.

The hits are those a store would score: each query's ``depth`` nearest documents by exact L2
(:func:`ragcun.index.exact.nearest`), or the hits of a ranking made elsewhere
(:func:`hit_pairs`), labelled relevant when they are among that query's relevant documents.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Any

import numpy as np

from ragcun.index.exact import nearest

DEPTH = 10
"""Hits per query in the calibration pairs (the top 10: what a RAG pipeline typically scores)."""


def hit_pairs(distances: Sequence[Sequence[float]], hits: Sequence[Sequence[Hashable]],
              relevant: Sequence[Collection[Hashable]], depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 distances and bool labels of every query's first ``depth`` ``hits``.

    ``hits[i]`` (document keys, nearest first) and ``distances[i]`` (their Euclidean distances)
    are query ``i``'s ranking; a hit is relevant when its key is in ``relevant[i]``.
    """
    if not len(distances) == len(hits) == len(relevant):
        raise ValueError(f"got {len(distances)} distance rows, {len(hits)} hit rows and {len(relevant)} relevance sets")
    d_rows, l_rows = [], []
    for row_distances, row_hits, rel in zip(distances, hits, relevant):
        top = list(row_hits)[:depth]
        dist = np.asarray(row_distances, dtype=np.float64)[:depth]
        if len(dist) != len(top):
            raise ValueError(f"a query has {len(top)} hits but {len(dist)} distances")
        d_rows.append(dist)
        l_rows.append(np.array([i in rel for i in top], dtype=bool))
    if not d_rows:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate(d_rows), np.concatenate(l_rows)


def calibration_pairs(queries: Any, docs: Any, relevant: Sequence[Collection[int]],
                      depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """Distances and relevance labels of each query row's ``depth`` nearest rows of ``docs`` (exact L2).

    ``relevant[i]`` holds the document rows relevant to query row ``i``. Returns flat float64
    Euclidean distances and bool labels, ``len(queries) * min(depth, len(docs))`` of each.
    """
    if len(relevant) != len(queries):
        raise ValueError(f"got {len(queries)} queries but {len(relevant)} relevance sets")
    rows, squared = nearest(queries, docs, depth)
    return hit_pairs(np.sqrt(squared), rows.tolist(), relevant, depth)
