"""Fit a store's relevance calibrator on judged hits, at the store's own distances.

A judgement is ``(query, doc_id, relevant)``: ``query`` a query vector (or, when an ``embed`` function
is given, the query text), ``doc_id`` a stored id, ``relevant`` ``True``/``False`` or ``1``/``0``. The
distances are those the store's index computes for the pairs, so the calibrator fits what the store
scores; :func:`fit_store_calibrator` sets it on the store, where it scores every later hit
(``Hit.relevance``) and is saved with the store. ``DocStore.fit_calibrator``, ``GaussianRetriever.calibrate``
and both framework stores' ``calibrate`` call it. Judged pairs carry no hybrid ranking, so such a calibrator
scores hybrid hits by their distance alone; where whole labelled queries are at hand (``ragcun-train``'s
held-back queries, ``ragcun-eval calibrate`` on a BEIR split), :func:`add_hybrid_terms` also fits its
hybrid terms on their hybrid hits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np

from ragcun.index.protocol import as_list, as_matrix
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.scoring.pairs import DEPTH
from ragcun.store.fusion import resolve_weights

log = logging.getLogger(__name__)

Judgement = tuple[Any, str, Any]
"""``(query vector or text, stored document id, relevant)``."""
Embed = Callable[[Sequence[str]], Any]
"""Query texts -> query vectors (N, D), as the store's embedding model encodes queries."""


def _label(value: Any, n: int) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"judgement {n}: relevant must be True/False or 1/0; got {value!r}")


def _query_vectors(queries: list[Any], embed: Embed | None, dim: int) -> np.ndarray:
    """One (len(queries), dim) matrix: texts encoded in one ``embed`` call, vectors checked."""
    texts = sorted({q for q in queries if isinstance(q, str)})
    if texts and embed is None:
        raise ValueError("judgements give query texts; this store needs an embedding model to encode them "
                         "(pass query vectors, or embed=)")
    encoded = dict(zip(texts, as_matrix(embed(texts), dim, "query vectors"))) if texts and embed else {}
    rows = [encoded[q] if isinstance(q, str) else as_matrix(q, dim, f"judgement {n} query vector")[0]
            for n, q in enumerate(queries)]
    return np.stack(rows) if rows else np.zeros((0, dim), np.float32)


def fit_store_calibrator(store: Any, judgements: Iterable[Judgement], embed: Embed | None = None,
                         fitted_on: str = "") -> RelevanceCalibrator:
    """Fit a :class:`RelevanceCalibrator` on ``judgements`` at ``store``'s distances and set it as the store's.

    ``store`` is a :class:`ragcun.store.doc_store.DocStore`. ``ValueError`` for an unknown document id, a label
    other than 0/1, a malformed judgement, a query text without ``embed``, or judgements a calibrator cannot
    be fitted on (fewer than :data:`ragcun.scoring.calibrator.MIN_PAIRS`, a single class); the store is
    then left as it was.
    """
    rows = as_list(judgements, "judgements")
    for n, row in enumerate(rows):
        if not isinstance(row, (tuple, list)) or len(row) != 3:
            raise ValueError(f"judgement {n}: expected (query, doc_id, relevant); got {row!r}")
        if row[1] not in store:
            raise ValueError(f"judgement {n}: document id {row[1]!r} is not in the store")
    labels = np.array([_label(r[2], n) for n, r in enumerate(rows)], dtype=bool)
    queries = _query_vectors([r[0] for r in rows], embed, store.index.dim)
    distances = np.empty(len(rows))
    for vector in np.unique(queries, axis=0):
        same = np.flatnonzero((queries == vector).all(axis=1))
        distances[same] = store.index.distances(vector[None, :], [rows[i][1] for i in same])
    calibrator = RelevanceCalibrator.fit(distances, labels,
                                         fitted_on=fitted_on or f"{len(rows)} judged hits of a store")
    store.calibrator = calibrator
    return calibrator


def hybrid_pairs(store: Any, queries: np.ndarray, texts: Sequence[str], relevant: Sequence[Collection[str]],
                 fusion: FusionSettings | None = None, depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances, BM25 shares and relevance labels of each query's top ``depth`` hybrid hits in ``store`` (a
    :class:`ragcun.store.doc_store.DocStore`; query vectors ``queries``, texts ``texts``, relevant ids
    ``relevant``), fused as a store given a model carrying ``fusion`` fuses them. A query whose text is blank
    or that falls back to dense ranking gives no pairs."""
    alpha, normalization = resolve_weights(None, None, fusion)
    rows: list[tuple[float, float, bool]] = []
    for vector, text, rel in zip(queries, texts, relevant):
        if not text.strip():
            continue
        hits = store.search(vector, depth, text=text, mode="hybrid", alpha=alpha, normalization=normalization)
        rows += [(h.distance, h.bm25_share, h.record.id in rel) for h in hits if h.bm25_share is not None]
    d, s, y = zip(*rows) if rows else ((), (), ())
    return np.array(d, dtype=np.float64), np.array(s, dtype=np.float64), np.array(y, dtype=bool)


def add_hybrid_terms(calibrator: RelevanceCalibrator, store: Any, queries: np.ndarray, texts: Sequence[str],
                     relevant: Sequence[Collection[str]], fusion: FusionSettings | None = None) -> RelevanceCalibrator:
    """``calibrator`` with hybrid terms fitted on :func:`hybrid_pairs` of labelled queries; unchanged, with a
    warning that says why, when those hits cannot be fitted (too few, one class, no effect of the BM25 share)."""
    distances, shares, labels = hybrid_pairs(store, queries, texts, relevant, fusion)
    try:
        return calibrator.fit_hybrid(distances, shares, labels)
    except ValueError as exc:
        log.warning("hybrid hits keep the distance-only P(relevant): %s", exc)
        return calibrator
