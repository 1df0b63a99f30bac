"""``DocStore``: texts and metadata beside any ``VectorIndex`` - the core both framework stores wrap.

It owns the id -> (text, metadata) records, a lexical (BM25) index of the texts kept in step with
the vectors, filtered search in three modes (one place: dense L2, lexical BM25, and hybrid fusion
of both, :mod:`ragcun.store.fusion`), relevance scores (:mod:`ragcun.scoring.distance_law`), MMR (:mod:`ragcun.store.mmr`)
and atomic JSON persistence. It knows nothing of LlamaIndex or LangChain. On an index that stores metadata (``capabilities.metadata_filter``, such as
``MilvusL2Index``) it stores each record's metadata there too and pushes metadata filters down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.filters import compile_filter
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import (
    DirectoryIndex,
    LexicalIndex,
    MetadataIndex,
    VectorIndex,
    as_matrix,
    check_ids,
    check_k,
)
from ragcun.io.rwlock import RWLock
from ragcun.io.saves import MANIFEST, SaveFormatError, atomic_save, read_json, read_save
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.distance_law import MODES, RelevanceScore, RelevanceScorer
from ragcun.store.fusion import DEFAULT_ALPHA, DEFAULT_CANDIDATES, check_alpha, check_mode, fuse
from ragcun.store.metadata import check_metadata
from ragcun.store.mmr import check_mmr_args, mmr_select

FORMAT = "ragcun.DocStore"
VERSION = 1
LEXICAL_DIR = "lexical"
MANIFEST_FIELDS = {"dim": (int, type(None)), "count": (int,), "index_saved": (bool,), "scorer": (dict,),
                   "extra": (dict,)}
SCORE_MODES = ("relevance", *MODES)
"""``score_mode`` values: ``"relevance"`` (a calibrator's ``P(relevant)``) or a distance-law mode of :mod:`ragcun.scoring.distance_law`."""


def score_settings(score_mode: str | None, calibrator: Any) -> tuple[RelevanceScorer, RelevanceCalibrator | None]:
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
        return RelevanceScorer(), calibrator
    return RelevanceScorer(score_mode or "auto"), None


def scored_store(store: DocStore | None, index: VectorIndex | None, lexical: BM25Index | None,
                 score_mode: str | None, calibrator: Any) -> DocStore:
    """The store a framework adapter wraps, scoring as :func:`score_settings` says: a new one on ``index``, or
    ``store`` (a loaded one), keeping the calibrator saved with it unless ``calibrator`` names another."""
    scorer, chosen = score_settings(score_mode, calibrator if calibrator is not None
                                    else (store.calibrator if store is not None else None))
    if store is None:
        return DocStore(index, scorer, lexical, chosen)
    store.calibrator = chosen
    return store


@dataclass
class Record:
    """One stored item: id, text and a JSON-serialisable metadata dict."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    """A search result: the record, its Euclidean distance and a score in [0, 1].

    ``score`` is, with a calibrator on the store, the calibrated ``P(relevant)`` of the hit's
    distance (:mod:`ragcun.scoring.calibrator`; in every mode that has a query vector); otherwise the
    distance law's relevance (:mod:`ragcun.scoring.distance_law`) when ``mode`` is ``"dense"`` and the fused
    score (:mod:`ragcun.store.fusion`) for ``"lexical"`` and ``"hybrid"``;
    ``lexical_score`` is the raw BM25 score (``None`` in dense mode); ``distance`` is ``nan`` for a
    lexical search given no query vector. ``fallback`` says why a lexical or hybrid search ranked
    densely instead (e.g. the query had no lexical terms); ``None`` when it ran as asked.
    """

    record: Record
    distance: float
    score: float
    lexical_score: float | None = None
    mode: str = "dense"
    fallback: str | None = None


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

    def __init__(self, index: VectorIndex | None = None, scorer: RelevanceScorer | None = None,
                 lexical: BM25Index | None = None, calibrator: RelevanceCalibrator | None = None) -> None:
        if index is not None and not isinstance(index, VectorIndex):
            raise TypeError(f"index must implement ragcun.VectorIndex; got {type(index).__name__}")
        self.index: VectorIndex = index if index is not None else L2Index(factory="auto")
        self._pushdown = self.index.capabilities.metadata_filter
        self._index_lexical = self.index.capabilities.lexical
        if self._index_lexical and lexical is not None:
            raise ValueError(f"{type(self.index).__name__} searches texts itself; do not pass lexical=")
        self.lexical: BM25Index | None = None if self._index_lexical else (lexical or BM25Index())
        self.scorer = scorer or RelevanceScorer()
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
        for rec in records:
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
               filter: Any = None, *, text: str | None = None, mode: str = "dense",
               alpha: float = DEFAULT_ALPHA, candidates: int = DEFAULT_CANDIDATES) -> list[Hit]:
        """Up to ``k`` records for ``query`` (a (D,) vector) and/or ``text`` that satisfy ``where`` and ``filter``, best first.

        ``mode``: ``"dense"`` ranks by L2 distance to ``query``; ``"lexical"`` by BM25 on ``text``
        (``query`` optional: it only fills in distances); ``"hybrid"`` fuses both over the union of
        each side's top ``candidates`` (:mod:`ragcun.store.fusion`; ``alpha`` = dense weight, 1 = dense
        only). A lexical or hybrid search whose ``text`` has no lexical terms, or matches nothing,
        ranks densely instead and says so in each hit's ``fallback``. ``where`` is a record
        predicate; ``filter`` a metadata filter spec (:mod:`ragcun.index.filters`), also passed down to an
        index with ``capabilities.metadata_filter`` so the index narrows the search itself.
        """
        k, mode, alpha = check_k(k), check_mode(mode), check_alpha(alpha)
        candidates = check_k(candidates, "candidates")
        if mode != "dense" and (not isinstance(text, str) or not text.strip()):
            raise ValueError(f"a {mode} search needs the query text (text=...); got {text!r}")
        if query is None and mode != "lexical":
            raise ValueError(f"a {mode} search needs a query vector")
        with self._lock.read():
            return self._search(query, k, where, filter, text, mode, alpha, candidates)

    def _search(self, query: ArrayLike | None, k: int, where: RecordFilter | None, filter: Any,
                text: str | None, mode: str, alpha: float, candidates: int) -> list[Hit]:
        """:meth:`search` with its arguments checked, under the caller's lock."""
        if not self._records:
            return []
        q = None if query is None else self._query_matrix(query)
        check = _all_of(where, metadata_filter(filter))
        if mode == "dense":
            assert q is not None  # refused by search(): a dense search needs a query vector
            return self._dense_hits(self._nearest(q, k, check, filter))
        assert text is not None  # refused by search(): a lexical or hybrid search needs the query text
        if not self._lexical_count():
            if mode == "lexical":
                raise ValueError(f"lexical search needs stored texts; none of this store's "
                                 f"{len(self._records)} records has any lexical terms")
            assert q is not None  # refused by search(): a hybrid search needs a query vector
            return self._dense_hits(self._nearest(q, k, check, filter), "no stored texts to search")
        found = self._lexical_search(text, max(k, candidates), check, filter)
        if not found:
            if q is None:
                return []
            reason = "no lexical terms in the query" if not self._has_terms(text) else "no lexical match"
            return self._dense_hits(self._nearest(q, k, check, filter), reason)
        known = {} if q is None or mode == "lexical" else {r.id: d for r, d in self._nearest(q, max(k, candidates), check, filter)}
        ids = list(dict.fromkeys([*known, *found]))
        return self._fused_hits(ids, known, q, text, k, 0.0 if mode == "lexical" else alpha, mode)

    def _query_matrix(self, query: ArrayLike) -> np.ndarray:
        q = as_matrix(query, self.index.dim, "query vector")
        if len(q) != 1:
            raise ValueError(f"search takes one query vector; got {len(q)}")
        return q

    def _nearest(self, q: np.ndarray, k: int, check: RecordFilter | None, filter: Any) -> list[tuple[Record, float]]:
        """The ``k`` nearest (record, distance) pairs passing ``check``, widening the index search until found."""
        pushed = {"filter": filter} if self._pushdown and filter is not None else {}
        total = len(self._records)
        fetch = k if check is None else min(total, max(4 * k, 32))
        while True:
            ids, dist = self.index.search(q, min(fetch, total), **pushed)
            pairs = [(self._records[i], float(d)) for i, d in zip(ids[0], dist[0])
                     if i is not None and (check is None or check(self._records[i]))]
            if len(pairs) >= k or fetch >= total or ids[0][-1] is None:  # None pads: no more rows
                return pairs[:k]
            fetch *= 4

    def distance_score(self) -> RelevanceCalibrator | RelevanceScore:
        """What turns a distance into a dense hit's score now: the calibrator, else the current distance law."""
        return self.calibrator or self.scorer.current(self.index, lambda: list(self._records))

    def _dense_hits(self, pairs: list[tuple[Record, float]], fallback: str | None = None) -> list[Hit]:
        score = self.distance_score()
        scores = score(np.array([d for _, d in pairs])) if pairs else np.zeros(0)
        return [Hit(rec, d, float(s), fallback=fallback) for (rec, d), s in zip(pairs, scores)]

    def _lexical_count(self) -> int:
        return self.lexical.count if self.lexical is not None else self.index.count

    def _has_terms(self, text: str) -> bool:
        return self.lexical is None or bool(self.lexical.query_terms(text))

    def _lexical_search(self, text: str, n: int, check: RecordFilter | None, filter: Any) -> list[str]:
        """Ids of the ``n`` best BM25 matches for ``text`` that pass ``check``."""
        if self.lexical is not None:
            allowed = None if check is None else (lambda i: check(self._records[i]))
            return self.lexical.search(text, n, allowed)[0]
        pushed = {"filter": filter} if filter is not None else {}
        total = len(self._records)
        fetch = n if check is None else min(total, max(4 * n, 32))
        while True:
            ids, _ = cast(LexicalIndex, self.index).lexical_search(text, min(fetch, total), **pushed)
            kept = [i for i in ids if i in self._records and (check is None or check(self._records[i]))]
            if len(kept) >= n or fetch >= total or len(ids) < min(fetch, total):
                return kept[:n]
            fetch *= 4

    def _fused_hits(self, ids: list[str], known: dict[str, float], q: np.ndarray | None, text: str, k: int,
                    alpha: float, mode: str) -> list[Hit]:
        """The ``k`` best of candidate ``ids`` by fused score, each with its distance and BM25 score.

        ``known`` holds the distances the index search returned; the others are computed from the
        stored vectors."""
        lex = np.asarray(self.lexical.scores(text, ids) if self.lexical is not None
                         else cast(LexicalIndex, self.index).lexical_scores(text, ids), dtype=np.float64)
        dist = np.array([known.get(i, np.nan) for i in ids], dtype=np.float64)
        if q is None:
            fused = fuse(np.zeros(len(ids)), lex, 0.0)
        else:
            missing = np.flatnonzero(np.isnan(dist))
            if len(missing):
                vecs = self.index.get_vectors([ids[j] for j in missing]).astype(np.float64)
                dist[missing] = np.sqrt(((vecs - q[0]) ** 2).sum(axis=1))
            fused = fuse(dist, lex, alpha)
        order = np.lexsort((np.nan_to_num(dist), -fused))[:k]
        score = fused if q is None or self.calibrator is None else self.calibrator(dist)
        return [Hit(self._records[ids[j]], float(dist[j]), float(score[j]), float(lex[j]), mode) for j in order]

    def mmr_search(self, query: ArrayLike, k: int, fetch_k: int = 20, lambda_mult: float = 0.5,
                   where: RecordFilter | None = None, filter: Any = None) -> list[Hit]:
        """``k`` records chosen by Euclidean MMR (:func:`ragcun.store.mmr.mmr_select`) among the ``fetch_k`` nearest
        that satisfy ``where`` and ``filter`` (as in :meth:`search`)."""
        k, fetch_k, lambda_mult = check_mmr_args(k, fetch_k, lambda_mult)
        if query is None:
            raise ValueError("MMR search needs a query vector")
        with self._lock.read():
            candidates = self._search(query, max(k, fetch_k), where, filter, None, "dense", DEFAULT_ALPHA,
                                      DEFAULT_CANDIDATES)
            if not candidates:
                return []
            vecs = self.index.get_vectors([h.record.id for h in candidates])
            picks = mmr_select(np.asarray(query, dtype=np.float32).reshape(-1), vecs, k, lambda_mult)
            return [candidates[p] for p in picks]

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Atomically save records (``records.json``), scorer state and calibrator, the lexical index (``lexical/``) and,
        if it can save, the vector index (``index/``)."""
        with self._lock.read():
            def write(tmp: Path) -> dict:
                saves_index = self.index.capabilities.saves_to_dir
                if saves_index:
                    cast(DirectoryIndex, self.index).save(tmp / "index")
                if self.lexical is not None:
                    self.lexical.save(tmp / LEXICAL_DIR)
                (tmp / "records.json").write_text(json.dumps(
                    [[r.id, r.text, r.metadata] for r in self._records.values()]), encoding="utf-8")
                fields = {"dim": self.index.dim, "count": len(self._records), "index_saved": saves_index,
                          "scorer": self.scorer.to_dict(), "extra": extra or {}}
                return fields if self.calibrator is None else {**fields, "calibrator": self.calibrator.to_dict()}
            return atomic_save(path, FORMAT, VERSION, write)

    @classmethod
    def load(cls, path: str | os.PathLike, index: VectorIndex | None = None) -> tuple[DocStore, dict[str, Any]]:
        """Load a :meth:`save` directory (verified); returns the store and the ``extra`` dict saved with it.

        ``index`` supplies the vectors for saves of indexes that persist themselves (e.g. Milvus); it
        must have the saved dimension and hold every saved id (else ``SaveFormatError``). On an index with
        ``capabilities.metadata_filter``, any metadata it holds that differ from
        the saved records' (e.g. written before metadata were pushed down) are re-stored from them.
        The lexical index is read back and checked against the records (a save without one is
        re-indexed from the records' texts).
        """
        path, man = read_save(path, FORMAT, VERSION, MANIFEST_FIELDS)
        given = index is not None
        if index is None:
            if not man["index_saved"]:
                raise ValueError(f"{path}: the index was not saved here; pass the index= it lives in")
            index = L2Index.load(path / "index", dim=man["dim"])
        try:
            scorer = RelevanceScorer.from_dict(man["scorer"])
            saved = man.get("calibrator")  # written only for a store with a calibrator
            calibrator = None if saved is None else RelevanceCalibrator.from_dict(saved, "calibrator")
        except ValueError as exc:
            raise SaveFormatError(f"{path / MANIFEST}: {exc}") from None
        lexical = None
        if f"{LEXICAL_DIR}/{BM25Index.META}" in man["files"] and not index.capabilities.lexical:
            try:
                lexical = BM25Index.load(path / LEXICAL_DIR)
            except (ValueError, KeyError, OSError) as exc:
                raise SaveFormatError(f"{path / LEXICAL_DIR}: unreadable lexical index ({exc})") from exc
        store = cls(index, scorer, lexical, calibrator)
        rows = read_json(path / "records.json")
        store._records = {i: Record(i, t, m) for i, t, m in rows}
        if store.lexical is not None:
            if lexical is None:
                store.lexical.add(list(store._records), [r.text for r in store._records.values()])
            elif any(i not in store._records for i in lexical.ids):
                raise SaveFormatError(f"{path / LEXICAL_DIR}: indexes ids that are not among the saved records")
        if len(store._records) != man["count"] or index.count != man["count"]:
            raise SaveFormatError(f"{path}: {len(store._records)} records and {index.count} vectors, "
                                  f"manifest says {man['count']}")
        if given and store._records and index.dim != man["dim"]:
            raise SaveFormatError(f"{path}: the index has dimension {index.dim}, the save {man['dim']}")
        if store._pushdown:
            store._sync_index_metadata(path)
        elif given:
            store._check_index_holds(path)
        return store, man["extra"]

    def _check_index_holds(self, path: Path, batch: int = 10_000) -> None:
        """``SaveFormatError`` unless the index holds every saved id (read back in batches)."""
        ids = list(self._records)
        for start in range(0, len(ids), batch):
            try:
                self.index.get_vectors(ids[start:start + batch])
            except KeyError as exc:
                raise SaveFormatError(f"{path}: saved records are missing from the index: {exc}") from None

    def _sync_index_metadata(self, path: Path, batch: int = 10_000) -> None:
        """Re-store the records' metadata where the index's copy differs; a missing id is a ``SaveFormatError``."""
        ids = list(self._records)
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            try:
                held = cast(MetadataIndex, self.index).get_metadata(chunk)
            except KeyError as exc:
                raise SaveFormatError(f"{path}: saved records are missing from the index: {exc}") from None
            stale = [i for i, m in zip(chunk, held) if m != self._records[i].metadata]
            if stale:
                self._index_add([self._records[i] for i in stale], self.index.get_vectors(stale))
