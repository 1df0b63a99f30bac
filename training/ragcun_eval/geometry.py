"""Geometries: how raw model outputs become the vectors that exact L2 search ranks.

- ``cosine``: unit-normalise documents and queries (L2 order on unit vectors is cosine order);
- ``l2``: the raw outputs (for a base model: before its ``Normalize``, i.e. the pooled embedding);
- ``whitened``: unit-normalise, then ZCA-whiten with mean and covariance fitted on the *corpus
  being indexed* (``ragcun.model.head.whitening_map``, the same map as ``GaussianEncoder.fit_whitening``),
  applied to documents and queries alike; ranked by L2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragcun.model.head import whitening_map
from ragcun_eval.models import DENSE_GEOMETRIES


@dataclass
class Space:
    """Vectors of one geometry: ``docs`` and ``queries`` (float32, ranked by L2) and the query norms.

    ``query_norms`` are what "norm as confidence" reads: the raw norm for ``cosine`` (unit vectors
    have none), the norm of the searched vector otherwise.
    """

    geometry: str
    docs: np.ndarray
    queries: np.ndarray
    query_norms: np.ndarray

    def similarity(self, distances: np.ndarray) -> np.ndarray:
        """The geometry's native score: cosine similarity (1 − d²/2) for ``cosine``, −distance otherwise."""
        d = np.asarray(distances, dtype=np.float64)
        return 1.0 - d * d / 2.0 if self.geometry == "cosine" else -d


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def apply_geometry(geometry: str, docs_raw: np.ndarray, queries_raw: np.ndarray) -> Space:
    """The :class:`Space` of ``geometry`` for raw document and query outputs."""
    if geometry not in DENSE_GEOMETRIES:
        raise ValueError(f"unknown dense geometry {geometry!r}; choose one of {DENSE_GEOMETRIES}")
    docs, queries = np.asarray(docs_raw, np.float64), np.asarray(queries_raw, np.float64)
    if geometry == "cosine":
        d, q, norms = _unit(docs), _unit(queries), np.linalg.norm(queries, axis=1)
    elif geometry == "l2":
        d, q = docs, queries
        norms = np.linalg.norm(q, axis=1)
    else:
        weight, bias = whitening_map(_unit(docs), docs.shape[1])
        d, q = _unit(docs) @ weight.T + bias, _unit(queries) @ weight.T + bias
        norms = np.linalg.norm(q, axis=1)
    return Space(geometry, d.astype(np.float32), q.astype(np.float32), norms)
