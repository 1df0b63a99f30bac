"""``DocStore``: texts and metadata beside any ``VectorIndex`` - the core both framework stores wrap.

It owns the id -> (text, metadata) records, a BM25 index of the texts kept in step with the
vectors, filtered search in the three :class:`ragcun.store.modes.RetrievalMode` s (one query path:
dense L2, sparse BM25, and hybrid fusion of both, :mod:`ragcun.store.fusion`), the scores of each hit
(:class:`ragcun.store.hits.Hit`), MMR (:mod:`ragcun.store.mmr`) and atomic JSON persistence. It knows nothing of LlamaIndex or LangChain. On an index that stores metadata (``capabilities.metadata_filter``, such as
``MilvusL2Index``) it stores each record's metadata there too and pushes metadata filters down.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.filters import compile_filter
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import (
    LexicalIndex,
    LexicalMatches,
    VectorIndex,
    as_list,
    as_matrix,
    check_ids,
    check_k,
)
from ragcun.io.rwlock import RWLock
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.distance_law import MODES, DistanceLaw, DistanceLawScorer
from ragcun.store.calibrate import Embed, Judgement, fit_store_calibrator
from ragcun.store.calibrated import CalibratorSource
from ragcun.store.fusion import (
    DEFAULT_CANDIDATES,
    DEFAULT_NORMALIZATION,
    DEFAULT_RRF_K,
    FusionMethod,
    HybridFusion,
)
from ragcun.store.hits import Hit, Record
from ragcun.store.metadata import check_metadata
from ragcun.store.mmr import check_mmr_args, mmr_select
from ragcun.store.modes import RetrievalMode
from ragcun.store.persistence import RecordsConverter, load_store, save_store

SCORE_MODES = ("relevance", *MODES)
"""``score_mode`` values: ``"relevance"`` (a calibrator's ``P(relevant)``) or a distance-law mode of :mod:`ragcun.scoring.distance_law`."""


def score_settings(score_mode: str | None, calibrator: Any) -> tuple[DistanceLawScorer, RelevanceCalibrator | None]:
    """The scorer and calibrator a store uses for ``score_mode``.

    ``calibrator`` is a :class:`RelevanceCalibrator`, ``None``, or a model that may carry one (its
    ``relevance_calibrator``: a ``GaussianEncoder`` or a framework embedding over one).
    ``None`` (the stores' default) means ``"relevance"`` when there is a ``calibrator`` and
    ``"auto"`` otherwise; ``"relevance"`` without a calibrator is a ``ValueError``; a distance-law
    mode (``"auto"``, ``"isotropic"``, ``"empirical"``) leaves the calibrator unused.
    """
    if score_mode is not None and score_mode not in SCORE_MODES:
        raise ValueError(f"score_mode must be one of {SCORE_MODES}; got {score_mode!r}")
    if calibrator is not None and not isinstance(calibrator, RelevanceCalibrator):
        calibrator = getattr(calibrator, "relevance_calibrator", calibrator)
    if calibrator is not None and not isinstance(calibrator, RelevanceCalibrator):
        raise TypeError(f"calibrator must be a ragcun.scoring.calibrator.RelevanceCalibrator; got {type(calibrator).__name__}")
    if score_mode == "relevance" and calibrator is None:
        raise ValueError("score_mode='relevance' needs a relevance calibrator: a model that carries one "
                         "(ragcun-train fits it; GaussianEncoder() ships one) or calibrator=")
    if score_mode in (None, "relevance") and calibrator is not None:
        return DistanceLawScorer(), calibrator
    return DistanceLawScorer(score_mode or "auto"), None


def scored_store(store: DocStore | None, index: VectorIndex | None, lexical: BM25Index | None,
                 score_mode: str | None, calibrator: CalibratorSource) -> DocStore:
    """The store a framework adapter wraps, scoring as :func:`score_settings` says: a new one on ``index``, or
    ``store`` (a loaded one), keeping the calibrator saved with it unless ``calibrator`` names another."""
    scorer, chosen = score_settings(score_mode, calibrator if calibrator is not None
                                    else (store.calibrator if store is not None else None))
    if store is None:
        return DocStore(index, scorer, lexical, chosen)
    store.calibrator = chosen
    return store


RecordFilter = Callable[[Record], bool]


def metadata_filter(spec: Any) -> RecordFilter | None:
    """A record predicate from a metadata filter spec (dict or callable on metadata; see ``ragcun.index.filters``)."""
    pred = compile_filter(spec)
    return None if pred is None else (lambda rec: pred(rec.metadata))


def _all_of(*checks: RecordFilter | None) -> RecordFilter | None:
    """A predicate true when every given one is (``None``s are ignored; ``None`` if none is given)."""
    live = [c for c in checks if c is not None]
    if len(live) <= 1:
        return live[0] if live else None
    return lambda rec: all(c(rec) for c in live)


class DocStore:
    """Records (text + metadata) keyed by id, their vectors in a ``VectorIndex`` (default: a new ``L2Index``).

    ``scorer`` keeps the distance law of dense scores; a ``calibrator`` (saved with the store)
    replaces scores by ``P(relevant)``; ``lexical`` is the BM25 index (default English).
    """

    def __init__(self, index: VectorIndex | None = None, scorer: DistanceLawScorer | None = None,
                 lexical: BM25Index | None = None, calibrator: RelevanceCalibrator | None = None) -> None:
        if index is not None and not isinstance(index, VectorIndex):
            raise TypeError(f"index must implement ragcun.VectorIndex; got {type(index).__name__}")
        self.index: VectorIndex = index if index is not None else L2Index(factory="auto")
        self._pushdown = self.index.capabilities.metadata_filter
        self._index_lexical = self.index.capabilities.lexical
        if self._index_lexical and lexical is not None:
            raise ValueError(f"{type(self.index).__name__} searches texts itself; do not pass lexical=")
        self.lexical: BM25Index | None = None if self._index_lexical else (lexical or BM25Index())
        self.scorer = scorer or DistanceLawScorer()
        self.calibrator = score_settings(None, calibrator)[1]
        self._records: dict[str, Record] = {}
        self._lock = RWLock()  # searches share it, writes take it alone

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    @property
    def ids(self) -> list[str]:
        """All stored ids, in insertion order."""
        return list(self._records)

    def add(self, records: Sequence[Record], vectors: ArrayLike) -> list[str]:
        """Store ``records`` with their ``vectors`` (N, D); an existing id is replaced."""
        records = as_list(records, "records")
        for rec in records:
            if not isinstance(rec, Record):
                raise TypeError(f"records must be ragcun Record objects; got {type(rec).__name__}")
            if not isinstance(rec.text, str):
                raise ValueError(f"record {rec.id!r}: text must be a string, got {type(rec.text).__name__}")
            check_metadata(rec.metadata, f"record {rec.id!r}")
        vecs = as_matrix(vectors, self.index.dim)
        if len(vecs) != len(records):
            raise ValueError(f"got {len(records)} records for {len(vecs)} vectors")
        if not records:
            return []
        with self._lock.write():
            ids = [r.id for r in records]
            self._index_add(records, vecs)
            if self.lexical is not None:
                self.lexical.add(ids, [r.text for r in records])
            for rec in records:
                self._records.pop(rec.id, None)
                self._records[rec.id] = Record(rec.id, rec.text, dict(rec.metadata))
        return [r.id for r in records]

    def _index_add(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        """Add to the index, with metadata and texts where it stores them (``capabilities``)."""
        extra: dict[str, Any] = {}
        if self._pushdown:
            extra["metadata"] = [r.metadata for r in records]
        if self._index_lexical:
            extra["texts"] = [r.text for r in records]
        self.index.add([r.id for r in records], vectors, **extra)

    def delete(self, ids: Sequence[str], missing_ok: bool = True) -> int:
        """Delete ``ids``; returns how many existed. Unknown ids are skipped, or raise ``KeyError`` if not ``missing_ok``."""
        ids = check_ids(ids)
        with self._lock.write():
            present = list(dict.fromkeys(i for i in ids if i in self._records))
            if not missing_ok and len(present) != len(set(ids)):
                raise KeyError(f"unknown ids: {[i for i in ids if i not in self._records][:5]!r}")
            if present:
                self.index.remove(present)
                if self.lexical is not None:
                    self.lexical.remove(present)
                for i in present:
                    del self._records[i]
            return len(present)

    def delete_where(self, where: RecordFilter | None = None, filter: Any = None) -> list[str]:
        """Delete the records satisfying ``where`` and ``filter`` (as in :meth:`find` and :meth:`search`; neither:
        all); returns their ids. They are chosen and deleted under one write lock, and a filter that raises
        deletes nothing."""
        check = _all_of(where, metadata_filter(filter))
        with self._lock.write():
            ids = [r.id for r in self.find(check)]
            self.delete(ids)
            return ids

    def clear(self) -> None:
        """Delete everything."""
        with self._lock.write():
            self.delete(list(self._records))

    def get(self, ids: Sequence[str]) -> list[Record]:
        """The records for ``ids`` that exist, in the order asked."""
        ids = check_ids(ids)
        return [self._records[i] for i in ids if i in self._records]

    def find(self, where: RecordFilter | None = None) -> list[Record]:
        """All records (matching ``where`` if given), in insertion order."""
        recs = list(self._records.values())
        return recs if where is None else [r for r in recs if where(r)]

    def search(self, query: ArrayLike | None, k: int, where: RecordFilter | None = None,
               filter: Any = None, *, text: str | None = None, mode: RetrievalMode | str = RetrievalMode.DENSE,
               alpha: float | None = None, candidates: int = DEFAULT_CANDIDATES, fusion: FusionMethod = "convex",
               normalization: str = DEFAULT_NORMALIZATION, rrf_k: int = DEFAULT_RRF_K) -> list[Hit]:
        """Up to ``k`` records for ``query`` (a (D,) vector) and/or ``text`` that satisfy ``where`` and ``filter``, best first.

        ``mode`` (a :class:`RetrievalMode` or its string): ``"dense"`` ranks by L2 distance to ``query``;
        ``"sparse"`` (alias ``"lexical"``) by BM25 on ``text`` (``query`` optional: it only fills in
        distances); ``"hybrid"`` fuses both over the union of each side's top ``candidates``
        (:class:`ragcun.store.fusion.HybridFusion`: ``fusion`` ``"convex"``, ``"rrf"`` or a callable;
        ``normalization`` of convex fusion, ``"fixed-floor"`` by default; ``alpha`` = dense weight, 1 = dense
        only, ``None`` = the normalisation's default (0.8 for fixed floors); ``rrf_k`` = RRF's constant; bad values are a ``ValueError`` naming the argument). A sparse or hybrid search
        whose ``text`` has no lexical terms, or matches nothing, ranks densely instead and says so in
        each hit's ``fallback``: this is the one place that decides it. ``where`` is a record predicate;
        ``filter`` a metadata filter spec (:mod:`ragcun.index.filters`), also passed down to an index with
        ``capabilities.metadata_filter`` so the index narrows the search itself.
        """
        k, mode, how = check_k(k), RetrievalMode.parse(mode), HybridFusion(fusion, normalization, alpha, rrf_k)
        candidates = check_k(candidates, "candidates")
        if mode is not RetrievalMode.DENSE and (not isinstance(text, str) or not text.strip()):
            raise ValueError(f"a {mode} search needs the query text (text=...); got {text!r}")
        if query is None and mode is not RetrievalMode.SPARSE:
            raise ValueError(f"a {mode} search needs a query vector")
        with self._lock.read():
            return self._search(query, k, where, filter, text, mode, how, candidates)

    def _search(self, query: ArrayLike | None, k: int, where: RecordFilter | None, filter: Any,
                text: str | None, mode: RetrievalMode, how: HybridFusion, candidates: int) -> list[Hit]:
        """:meth:`search` with its arguments checked, under the caller's lock.

        One candidate step: the vector index is searched once (widened only under a filter), BM25 is
        asked once (its top ids, the dense candidates' scores and whether the query has terms), and
        the lexical-only candidates' distances come from one ``distances`` call."""
        if not self._records:
            return []
        q = None if query is None else self._query_matrix(query)
        check = _all_of(where, metadata_filter(filter))
        dense = [] if q is None or mode is RetrievalMode.SPARSE else \
            self._nearest(q, k if mode is RetrievalMode.DENSE else max(k, candidates), check, filter)
        if mode is RetrievalMode.DENSE:
            return self._dense_hits(dense)
        assert text is not None  # refused by search(): a sparse or hybrid search needs the query text
        found = self._lexical(text, max(k, candidates), check, filter, [i for i, _ in dense])
        if found.ids:
            return self._fused_hits(found, dict(dense), q, k, how, mode)
        if not found.indexed and mode is RetrievalMode.SPARSE:
            raise ValueError(f"sparse search needs stored texts; none of this store's "
                             f"{len(self._records)} records has any lexical terms")
        if q is None:
            return []
        if mode is RetrievalMode.SPARSE:
            dense = self._nearest(q, k, check, filter)
        reason = ("no stored texts to search" if not found.indexed else
                  "no lexical terms in the query" if not found.has_terms else "no lexical match")
        return self._dense_hits(dense[:k], reason)

    def _query_matrix(self, query: ArrayLike) -> np.ndarray:
        q = as_matrix(query, self.index.dim, "query vector")
        if len(q) != 1:
            raise ValueError(f"search takes one query vector; got {len(q)}")
        return q

    def _widen(self, n: int, check: RecordFilter | None,
               fetch: Callable[[int], Sequence[tuple[str | None, float]]]) -> list[tuple[str, float]]:
        """The first ``n`` (id, value) pairs from ``fetch(m)`` (the index's ``m`` best, fewer when it has no
        more) whose records pass ``check``: ``m`` starts at ``n`` (unfiltered) or ``max(4n, 32)`` and grows
        fourfold until enough pass or the store is exhausted. Every filtered index search goes through here."""
        total = len(self._records)
        m = n if check is None else min(total, max(4 * n, 32))
        while True:
            got = [(i, v) for i, v in fetch(min(m, total)) if i is not None]
            kept = [(i, v) for i, v in got if i in self._records and (check is None or check(self._records[i]))]
            if len(kept) >= n or m >= total or len(got) < min(m, total):
                return kept[:n]
            m *= 4

    def _nearest(self, q: np.ndarray, k: int, check: RecordFilter | None, filter: Any) -> list[tuple[str, float]]:
        """The ``k`` nearest (id, distance) pairs passing ``check`` (:meth:`_widen` over the index search)."""
        pushed = {"filter": filter} if self._pushdown and filter is not None else {}

        def fetch(m: int) -> Sequence[tuple[str | None, float]]:
            ids, dist = self.index.search(q, m, **pushed)
            return list(zip(ids[0], dist[0].tolist()))
        return self._widen(k, check, fetch)

    def _lexical(self, text: str, n: int, check: RecordFilter | None, filter: Any,
                 extra: list[str]) -> LexicalMatches:
        """The ``n`` best BM25 matches for ``text`` passing ``check``, and the scores of the ``extra`` ids.

        The store's :class:`BM25Index` answers in one call; an index that ranks texts itself (Milvus) is
        searched through :meth:`_widen` and asked for the extra ids' scores."""
        if self.lexical is not None:
            allowed = None if check is None else (lambda i: check(self._records[i]))
            return self.lexical.query(text, n, allowed, extra)
        index = cast(LexicalIndex, self.index)
        pushed = {"filter": filter} if filter is not None else {}

        def fetch(m: int) -> Sequence[tuple[str | None, float]]:
            ids, scores = index.lexical_search(text, m, **pushed)
            return list(zip(ids, scores.tolist()))
        top = self._widen(n, check, fetch)
        scores = np.asarray([s for _, s in top], dtype=np.float32)
        extra_scores = index.lexical_scores(text, extra) if extra and top else np.zeros(len(extra), np.float32)
        return LexicalMatches([i for i, _ in top], scores, extra_scores, True, len(self._records))

    def distance_score(self) -> RelevanceCalibrator | DistanceLaw:
        """What turns a distance into a dense hit's :attr:`Hit.score` now: the calibrator, else the current distance law."""
        return self.calibrator or self._law()

    def _law(self) -> DistanceLaw:
        return self.scorer.current(self.index, lambda: list(self._records), len(self._records))

    def _dense_hits(self, pairs: list[tuple[str, float]], fallback: str | None = None) -> list[Hit]:
        law, relevance = self._distance_scores(np.array([d for _, d in pairs], dtype=np.float64))
        return [Hit(self._records[i], d, RetrievalMode.DENSE, law[j], relevance=relevance[j], fallback=fallback)
                for j, (i, d) in enumerate(pairs)]

    def _distance_scores(self, dist: np.ndarray, bm25_shares: np.ndarray | None = None
                         ) -> tuple[list[float | None], list[float | None]]:
        """The distance law's scores and, with a calibrator, ``P(relevant)`` of ``dist`` (and of hybrid hits'
        ``bm25_shares``); ``None``s without distances: a sparse search given no query vector, whose distances are
        all ``nan``."""
        if not len(dist) or np.isnan(dist[0]):
            return [None] * len(dist), [None] * len(dist)
        law = self._law()(dist).tolist()
        return law, [None] * len(dist) if self.calibrator is None else self.calibrator(dist, bm25_shares).tolist()

    def _fused_hits(self, found: LexicalMatches, known: dict[str, float], q: np.ndarray | None, k: int,
                    how: HybridFusion, mode: RetrievalMode) -> list[Hit]:
        """The ``k`` best of both sides' candidates by fused score, each with its distance and BM25 score.

        ``known`` holds the distances the index search returned; the lexical-only candidates'
        come from one ``index.distances`` call."""
        ids = list(dict.fromkeys([*known, *found.ids]))
        bm25 = dict(zip(known, found.extra_scores.tolist()))
        bm25.update(zip(found.ids, found.scores.tolist()))
        lex = np.array([bm25[i] for i in ids], dtype=np.float64)
        if q is None:
            dist = np.full(len(ids), np.nan)
        else:
            missing = [i for i in found.ids if i not in known]
            if missing:
                known = {**known, **dict(zip(missing, self.index.distances(q, missing).tolist()))}
            dist = np.array([known[i] for i in ids], dtype=np.float64)
        fused = how.sparse_only(lex) if mode is RetrievalMode.SPARSE or q is None else \
            how.scores(dist, lex, float(np.square(q, dtype=np.float64).sum()))
        order = np.lexsort((np.nan_to_num(dist), -fused))[:k]
        share = lex / lex.max() if lex.max() > 0 else np.zeros_like(lex)
        law, relevance = self._distance_scores(dist[order], share[order] if mode is RetrievalMode.HYBRID else None)
        return [Hit(self._records[ids[j]], float(dist[j]), mode, law[n], float(lex[j]), float(fused[j]), relevance[n],
                    bm25_share=float(share[j])) for n, j in enumerate(order.tolist())]

    def mmr_search(self, query: ArrayLike, k: int, fetch_k: int = 20, lambda_mult: float = 0.5,
                   where: RecordFilter | None = None, filter: Any = None) -> list[Hit]:
        """``k`` records chosen by Euclidean MMR (:func:`ragcun.store.mmr.mmr_select`) among the ``fetch_k`` nearest
        that satisfy ``where`` and ``filter`` (as in :meth:`search`)."""
        k, fetch_k, lambda_mult = check_mmr_args(k, fetch_k, lambda_mult)
        if query is None:
            raise ValueError("MMR search needs a query vector")
        with self._lock.read():
            candidates = self._search(query, max(k, fetch_k), where, filter, None, RetrievalMode.DENSE,
                                      HybridFusion(), DEFAULT_CANDIDATES)
            if not candidates:
                return []
            vecs = self.index.get_vectors([h.record.id for h in candidates])
            picks = mmr_select(np.asarray(query, dtype=np.float32).reshape(-1), vecs, k, lambda_mult)
            return [candidates[p] for p in picks]

    def fit_calibrator(self, judgements: Sequence[Judgement], embed: Embed | None = None) -> RelevanceCalibrator:
        """Fit a relevance calibrator on judged ``(query vector or text, doc_id, relevant)`` hits at this store's
        distances and score with it from now on (:func:`ragcun.store.calibrate.fit_store_calibrator`)."""
        return fit_store_calibrator(self, judgements, embed)

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Atomically save the store (:func:`ragcun.store.persistence.save_store`)."""
        return save_store(self, path, extra)

    @classmethod
    def load(cls, path: str | os.PathLike, index: VectorIndex | None = None,
             convert: RecordsConverter | None = None) -> tuple[DocStore, dict[str, Any]]:
        """Load a :meth:`save` directory, verified (:func:`ragcun.store.persistence.load_store`; ``convert`` maps
        the saved records onto those the store holds); returns the store and the ``extra`` dict saved with it."""
        return load_store(cls, path, index, convert)
