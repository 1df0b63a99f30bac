"""The index protocols ragcun vector backends satisfy (FAISS in-process, Milvus, ...)."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

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


@runtime_checkable
class MetadataFilterIndex(VectorIndex, Protocol):
    """A ``VectorIndex`` that stores each vector's metadata and narrows searches by a filter itself.

    ``search``'s ``filter`` is a ragcun filter spec (:mod:`ragcun.filters`); the index may return a
    superset of its matches (never drop one), so callers check the spec on the hits too.
    ``isinstance`` checks only that these methods exist (``MilvusL2Index`` has them, ``L2Index`` not).
    """

    def add(self, ids: Sequence[str], vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Store ``vectors`` (N, D) under ``ids`` with one metadata mapping each (``None``: empty)."""

    def search(self, queries: np.ndarray, k: int,
               filter: Any = None) -> tuple[list[list[str | None]], np.ndarray]:
        """The ``k`` nearest ids and distances per query row among rows that may match ``filter``."""

    def get_metadata(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored metadata for ``ids``, in order; unknown ids raise ``KeyError``."""
