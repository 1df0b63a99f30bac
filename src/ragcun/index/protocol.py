"""The index protocol every ragcun vector backend satisfies, and the checks they all share.

Backends (``L2Index`` on FAISS, ``MilvusL2Index``) and ``DocStore`` validate their inputs here, in
one place: :func:`as_matrix` (finite float32 (N, D) matrices whose distances fit float32),
:func:`as_list` / :func:`check_ids` (lists of non-empty strings, never a bare string),
:func:`check_k` (a positive int),
:func:`padded_result` (the ``None`` / ``inf`` padding of short result rows) and :func:`l2_distances` (the
distances ``distances(query, ids)`` reports). What a backend can
do beyond the protocol is declared in its :class:`IndexCapabilities`, never guessed with
``isinstance`` or ``hasattr``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

MAX_SQUARED_NORM = float(np.finfo(np.float32).max) / 4
"""Largest squared norm :func:`as_matrix` accepts: any squared distance between such vectors fits float32."""


@dataclass(frozen=True)
class IndexCapabilities:
    """What a ``VectorIndex`` does beyond the base protocol.

    ``metadata_filter``: ``add`` takes ``metadata=``, ``search`` takes ``filter=`` (a ragcun filter
    spec, see :mod:`ragcun.index.filters`) and narrows the search itself, returning a superset of the
    matches (callers re-check the spec), and ``get_metadata(ids)`` returns what it holds.
    ``saves_to_dir``: ``save(path)`` / ``cls.load(path, dim=)`` persist the index inside a
    ``DocStore`` save; otherwise the index persists itself (a database) and is passed to ``load``.
    ``lexical``: ``add`` takes ``texts=`` and the index answers ``lexical_search(query, k, filter=)``
    and ``lexical_scores(query, ids)`` itself (e.g. Milvus's BM25), instead of ``DocStore``'s own
    :class:`ragcun.index.lexical.bm25.BM25Index`.
    """

    metadata_filter: bool = False
    saves_to_dir: bool = False
    lexical: bool = False


@runtime_checkable
class VectorIndex(Protocol):
    """A store of string-keyed vectors searched by Euclidean distance.

    ``search`` returns, per query row, the ids of the ``k`` nearest vectors and their Euclidean
    (not squared) distances, nearest first; rows with fewer than ``k`` stored vectors are padded
    with ``None`` ids and ``inf`` distances (:func:`padded_result`).
    """

    capabilities: IndexCapabilities

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

    def distances(self, query: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """Euclidean distances (float32) from one ``query`` (D,) or (1, D) to the stored vectors of ``ids``, in order,
        as :meth:`search` would report them; unknown ids raise ``KeyError``."""

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors for ``ids`` (for MMR and the distance law's fit); unknown ids raise ``KeyError``."""


class DirectoryIndex(VectorIndex, Protocol):
    """A ``VectorIndex`` with ``capabilities.saves_to_dir``: it saves itself into a directory."""

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically save the index to directory ``path``."""


class MetadataIndex(VectorIndex, Protocol):
    """A ``VectorIndex`` with ``capabilities.metadata_filter``: it holds each vector's metadata."""

    def get_metadata(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored metadata for ``ids``, in order; unknown ids raise ``KeyError``."""


class LexicalIndex(VectorIndex, Protocol):
    """A ``VectorIndex`` with ``capabilities.lexical``: it ranks stored texts by BM25 itself."""

    def lexical_search(self, query: str, k: int, filter: object = None) -> tuple[list[str], np.ndarray]:
        """Ids and BM25 scores, best first, of up to ``k`` rows matching a term of ``query``."""

    def lexical_scores(self, query: str, ids: Sequence[str]) -> np.ndarray:
        """The BM25 score of ``query`` for each of ``ids``."""


@dataclass(frozen=True)
class LexicalMatches:
    """What one BM25 query returns (:meth:`ragcun.index.lexical.bm25.BM25Index.query`).

    ``ids`` / ``scores``: the best matches (positive scores only), best first; ``extra_scores``: the
    scores of the extra ids the caller asked about, in order (0 for no match); ``has_terms``: whether
    the query has any lexical terms; ``indexed``: how many documents have lexical terms.
    """

    ids: list[str]
    scores: np.ndarray
    extra_scores: np.ndarray
    has_terms: bool
    indexed: int


def l2_distances(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Euclidean distances (float32) from ``query`` (one row) to each row of ``vectors``, summed in float64."""
    diff = np.asarray(vectors, dtype=np.float64) - np.asarray(query, dtype=np.float64).reshape(1, -1)
    return np.sqrt((diff * diff).sum(axis=1)).astype(np.float32)


def as_matrix(vectors: object, dim: int | None, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a finite float32 (N, D) C-contiguous array; clear ``ValueError`` otherwise.

    An empty sequence is an empty (0, D) matrix. Rows whose squared norm exceeds
    :data:`MAX_SQUARED_NORM` are refused: their squared distances would overflow float32.
    """
    if vectors is None:
        raise ValueError(f"{what} is None")
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric: {exc}") from exc
    if arr.ndim == 1:
        arr = arr.reshape(0, dim or 0) if arr.size == 0 else arr[None, :]
    if arr.ndim != 2 or (arr.shape[1] == 0 and len(arr)):
        raise ValueError(f"{what} must have shape (N, D); got {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what}: dimension {arr.shape[1]}, the index expects {dim}")
    fits = np.einsum("ij,ij->i", arr, arr) <= MAX_SQUARED_NORM  # False for NaN and inf (einsum overflows silently)
    if not fits.all():
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}: NaN or infinite values")
        row = int(np.flatnonzero(~fits)[0])
        squared = float(np.square(arr[row], dtype=np.float64).sum())
        raise ValueError(f"{what}[{row}] is too large (squared norm {squared:.3g} > {MAX_SQUARED_NORM:.3g}): "
                         "its squared distances would overflow float32; rescale the vectors")
    return np.ascontiguousarray(arr)


def as_list(values: Iterable, what: str = "ids") -> list:
    """``values`` as a list, refusing a bare string or bytes where a sequence is expected (it would otherwise be
    iterated as one item per character); ``TypeError`` naming the argument ``what``."""
    if isinstance(values, (str, bytes)):
        kind = "string" if isinstance(values, str) else "bytes object"
        raise TypeError(f"{what} must be a list or other sequence, not a single {kind} ({values!r:.40})")
    return list(values)


def check_ids(ids: Sequence[str], what: str = "ids", max_bytes: int | None = None) -> list[str]:
    """``ids`` as a list of non-empty strings (at most ``max_bytes`` UTF-8 bytes each); a bare string is refused."""
    ids = as_list(ids, what)
    bad = [i for i in ids if not isinstance(i, str) or not i
           or (max_bytes is not None and len(i.encode("utf-8", "surrogatepass")) > max_bytes)]
    if bad:
        limit = f" of at most {max_bytes} UTF-8 bytes" if max_bytes is not None else ""
        raise ValueError(f"{what} must be non-empty strings{limit}; got "
                         f"{[b[:40] if isinstance(b, str) else b for b in bad[:3]]!r}")
    return ids


def check_k(k: object, what: str = "k") -> int:
    """``k`` as a positive int; ``ValueError`` naming it for floats, strings, booleans and ``k <= 0``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"{what} must be a positive int; got {k!r}")
    return int(k)


def check_kwargs(method: str, kwargs: dict[str, Any], allowed: Sequence[str] = ()) -> dict[str, Any]:
    """``kwargs`` when ``method`` (its name as a caller writes it) takes each of them (``allowed``); else a
    ``TypeError`` naming the others, so a misspelt or unsupported keyword is never silently ignored."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        takes = f"; it takes {', '.join(allowed)}" if allowed else ""
        raise TypeError(f"{method}() got unexpected keyword argument(s) {', '.join(unknown)}{takes}")
    return kwargs


def check_threshold(value: object, what: str = "threshold") -> float:
    """``value`` as a float: a ``TypeError`` naming ``what`` for anything but a real number (booleans and strings
    included), a ``ValueError`` for NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number; got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ValueError(f"{what} must be a number; got nan")
    return float(value)


def padded_result(n_queries: int, k: int) -> tuple[list[list[str | None]], np.ndarray]:
    """Result rows for ``n_queries`` queries holding nothing yet: ``None`` ids, ``inf`` distances."""
    return [[None] * k for _ in range(n_queries)], np.full((n_queries, k), np.inf, dtype=np.float32)

