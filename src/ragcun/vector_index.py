"""The index protocol every ragcun vector backend satisfies (FAISS in-process, Milvus, ...)."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class VectorIndex(Protocol):
    """A store of string-keyed vectors searched by Euclidean distance.

    ``search`` returns, per query row, the ids of the ``k`` nearest vectors and their Euclidean
    (not squared) distances, nearest first; rows with fewer than ``k`` stored vectors are padded
    with ``None`` ids and ``inf`` distances.
    """

    @property
    def dim(self) -> int | None:
        """Vector dimension, or ``None`` before the first add."""

    @property
    def count(self) -> int:
        """Number of stored vectors."""

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (N, D) under ``ids``; an existing id is replaced."""

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were present. Unknown ids raise ``KeyError``."""

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str | None]], np.ndarray]:
        """The ``k`` nearest stored ids and Euclidean distances for each query row."""

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors for ``ids`` (for MMR and re-scoring); unknown ids raise ``KeyError``."""
