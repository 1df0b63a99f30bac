"""``Record`` (what a store holds) and ``Hit`` (what a search returns, every score under its own name)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from ragcun.store.modes import RetrievalMode


@dataclass
class Record:
    """One stored item: id, text and a JSON-serialisable metadata dict."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    """A search result: the record and every score the search computed, each under its own name.

    ``distance``: Euclidean (L2) distance to the query vector (``nan`` for a sparse search given no
    query vector). ``law_score``: the distance law's survival score in [0, 1]
    (:mod:`ragcun.scoring.distance_law`; ``None`` without a distance). ``bm25_score``: the raw BM25 score
    (``None`` when BM25 was not asked, as in dense mode). ``fused_score``: the fused score of a sparse or
    hybrid search (:class:`ragcun.store.fusion.HybridFusion`: in [0, 1] for convex fusion with fixed floors
    or min–max, unbounded with z-scores, in (0, 2 / (rrf_k + 1)] for RRF, a callable's own score; ``None``
    in dense mode). ``bm25_share``: ``bm25_score`` over the best BM25 score among the query's candidates, in
    [0, 1] (``None`` in dense mode). ``relevance``: the calibrated ``P(relevant)`` of the distance, and for a
    hybrid hit of its BM25 share too when the calibrator has hybrid terms (:mod:`ragcun.scoring.calibrator`;
    ``None`` without a calibrator or a distance). ``mode``: how the hit was ranked; ``fallback`` says why a sparse or
    hybrid search ranked densely instead (e.g. the query had no lexical terms), ``None`` when it ran as asked.
    :attr:`score` is the one similarity the framework adapters report.
    """

    record: Record
    distance: float
    mode: RetrievalMode = RetrievalMode.DENSE
    law_score: float | None = None
    bm25_score: float | None = None
    fused_score: float | None = None
    relevance: float | None = None
    fallback: str | None = None
    bm25_share: float | None = None

    @property
    def score(self) -> float:
        """The framework-facing similarity: :attr:`relevance` when the store is calibrated, else
        :attr:`fused_score` (sparse, hybrid), else :attr:`law_score` (dense); in [0, 1] except a fused score
        under z-scores or a callable fusion."""
        for value in (self.relevance, self.fused_score, self.law_score):
            if value is not None:
                return value
        return math.nan  # only a hand-built hit has none: DocStore's have a fused score or a distance

    @property
    def lexical_score(self) -> float | None:
        """Deprecated name of :attr:`bm25_score`."""
        warnings.warn("Hit.lexical_score is deprecated; use Hit.bm25_score", DeprecationWarning, stacklevel=2)
        return self.bm25_score
