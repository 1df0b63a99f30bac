"""``DocStore``: texts and metadata beside any ``VectorIndex`` - the core both framework stores wrap.

It owns the id -> (text, metadata) records, filtered search (one place), relevance scores
(:mod:`ragcun.scores`), MMR (:mod:`ragcun.mmr`) and atomic JSON persistence. It knows nothing of
LlamaIndex or LangChain. On an index that stores metadata (``capabilities.metadata_filter``, such as
``MilvusL2Index``) it stores each record's metadata there too and pushes metadata filters down.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ragcun.filters import compile_filter
from ragcun.l2_index import L2Index
from ragcun.metadata import check_metadata
from ragcun.mmr import check_mmr_args, mmr_select
from ragcun.persistence import MANIFEST, SaveFormatError, atomic_save, read_json, read_save
from ragcun.scores import RelevanceScorer
from ragcun.vector_index import VectorIndex, as_matrix, check_ids, check_k

FORMAT = "ragcun.DocStore"
VERSION = 1
MANIFEST_FIELDS = {"dim": (int, type(None)), "count": (int,), "index_saved": (bool,), "scorer": (dict,),
                   "extra": (dict,)}


@dataclass
class Record:
    """One stored item: id, text and a JSON-serialisable metadata dict."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    """A search result: the record, its Euclidean distance and its relevance score in [0, 1]."""

    record: Record
    distance: float
    score: float


RecordFilter = Callable[[Record], bool]


def metadata_filter(spec: Any) -> RecordFilter | None:
    """A record predicate from a metadata filter spec (dict or callable on metadata; see ``ragcun.filters``)."""
    pred = compile_filter(spec)
    return None if pred is None else (lambda rec: pred(rec.metadata))


def _all_of(*checks: RecordFilter | None) -> RecordFilter | None:
    """A predicate true when every given one is (``None``s are ignored; ``None`` if none is given)."""
    live = [c for c in checks if c is not None]
    if len(live) <= 1:
        return live[0] if live else None
    return lambda rec: all(c(rec) for c in live)


class DocStore:
    """Records (text + metadata) keyed by id, their vectors in a ``VectorIndex`` (default: a new ``L2Index``)."""

    def __init__(self, index: VectorIndex | None = None, scorer: RelevanceScorer | None = None) -> None:
        if index is not None and not isinstance(index, VectorIndex):
            raise TypeError(f"index must implement ragcun.VectorIndex; got {type(index).__name__}")
        self.index: VectorIndex = index if index is not None else L2Index()
        self._pushdown = self.index.capabilities.metadata_filter
        self.scorer = scorer or RelevanceScorer()
        self._records: dict[str, Record] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    @property
    def ids(self) -> list[str]:
        """All stored ids, in insertion order."""
        return list(self._records)

    def add(self, records: Sequence[Record], vectors: np.ndarray) -> list[str]:
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
        with self._lock:
            ids = [r.id for r in records]
            if self._pushdown:
                self.index.add(ids, vecs, [r.metadata for r in records])
            else:
                self.index.add(ids, vecs)
            for rec in records:
                self._records.pop(rec.id, None)
                self._records[rec.id] = Record(rec.id, rec.text, dict(rec.metadata))
        return [r.id for r in records]

    def delete(self, ids: Sequence[str], missing_ok: bool = True) -> int:
        """Delete ``ids``; returns how many existed. Unknown ids are skipped, or raise ``KeyError`` if not ``missing_ok``."""
        ids = check_ids(ids)
        with self._lock:
            present = list(dict.fromkeys(i for i in ids if i in self._records))
            if not missing_ok and len(present) != len(set(ids)):
                raise KeyError(f"unknown ids: {[i for i in ids if i not in self._records][:5]!r}")
            if present:
                self.index.remove(present)
                for i in present:
                    del self._records[i]
            return len(present)

    def clear(self) -> None:
        """Delete everything."""
        with self._lock:
            self.delete(list(self._records))

    def get(self, ids: Sequence[str]) -> list[Record]:
        """The records for ``ids`` that exist, in the order asked."""
        ids = check_ids(ids)
        return [self._records[i] for i in ids if i in self._records]

    def find(self, where: RecordFilter | None = None) -> list[Record]:
        """All records (matching ``where`` if given), in insertion order."""
        recs = list(self._records.values())
        return recs if where is None else [r for r in recs if where(r)]

    def search(self, query: np.ndarray, k: int, where: RecordFilter | None = None,
               filter: Any = None) -> list[Hit]:
        """Up to ``k`` nearest records to ``query`` (D,) that satisfy ``where`` and ``filter``, nearest first.

        ``where`` is a record predicate; ``filter`` a metadata filter spec (:mod:`ragcun.filters`),
        also passed down to an index with ``capabilities.metadata_filter`` so the index narrows the search itself.
        """
        k = check_k(k)
        with self._lock:
            if not self._records:
                return []
            q = as_matrix(query, self.index.dim, "query vector")
            if len(q) != 1:
                raise ValueError(f"search takes one query vector; got {len(q)}")
            check = _all_of(where, metadata_filter(filter))
            pushed = {"filter": filter} if self._pushdown and filter is not None else {}
            total = len(self._records)
            fetch = k if check is None else min(total, max(4 * k, 32))
            while True:
                ids, dist = self.index.search(q, min(fetch, total), **pushed)
                pairs = [(self._records[i], float(d)) for i, d in zip(ids[0], dist[0])
                         if i is not None and (check is None or check(self._records[i]))]
                if len(pairs) >= k or fetch >= total or ids[0][-1] is None:  # None pads: no more rows
                    break
                fetch *= 4
            pairs = pairs[:k]
            law = self.scorer.current(self.index, lambda: list(self._records))
            scores = law(np.array([d for _, d in pairs])) if pairs else []
            return [Hit(rec, d, float(s)) for (rec, d), s in zip(pairs, scores)]

    def mmr_search(self, query: np.ndarray, k: int, fetch_k: int = 20, lambda_mult: float = 0.5,
                   where: RecordFilter | None = None, filter: Any = None) -> list[Hit]:
        """``k`` records chosen by Euclidean MMR (:func:`ragcun.mmr.mmr_select`) among the ``fetch_k`` nearest
        that satisfy ``where`` and ``filter`` (as in :meth:`search`)."""
        k, fetch_k, lambda_mult = check_mmr_args(k, fetch_k, lambda_mult)
        with self._lock:
            candidates = self.search(query, max(k, fetch_k), where, filter)
            if not candidates:
                return []
            vecs = self.index.get_vectors([h.record.id for h in candidates])
            picks = mmr_select(np.asarray(query, dtype=np.float32).reshape(-1), vecs, k, lambda_mult)
            return [candidates[p] for p in picks]

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Atomically save records (``records.json``), scorer state and, if it can save, the index (``index/``)."""
        with self._lock:
            def write(tmp: Path) -> dict:
                saves_index = self.index.capabilities.saves_to_dir
                if saves_index:
                    self.index.save(tmp / "index")
                (tmp / "records.json").write_text(json.dumps(
                    [[r.id, r.text, r.metadata] for r in self._records.values()]), encoding="utf-8")
                return {"dim": self.index.dim, "count": len(self._records), "index_saved": saves_index,
                        "scorer": self.scorer.to_dict(), "extra": extra or {}}
            return atomic_save(path, FORMAT, VERSION, write)

    @classmethod
    def load(cls, path: str | os.PathLike, index: VectorIndex | None = None) -> tuple["DocStore", dict[str, Any]]:
        """Load a :meth:`save` directory (verified); returns the store and the ``extra`` dict saved with it.

        ``index`` supplies the vectors for saves of indexes that persist themselves (e.g. Milvus); it
        must have the saved dimension and hold every saved id (else ``SaveFormatError``). On an index with
        ``capabilities.metadata_filter``, any metadata it holds that differ from
        the saved records' (e.g. written before metadata were pushed down) are re-stored from them.
        """
        path, man = read_save(path, FORMAT, VERSION, MANIFEST_FIELDS)
        given = index is not None
        if index is None:
            if not man["index_saved"]:
                raise ValueError(f"{path}: the index was not saved here; pass the index= it lives in")
            index = L2Index.load(path / "index", dim=man["dim"])
        try:
            scorer = RelevanceScorer.from_dict(man["scorer"])
        except ValueError as exc:
            raise SaveFormatError(f"{path / MANIFEST}: {exc}") from None
        store = cls(index, scorer)
        rows = read_json(path / "records.json")
        store._records = {i: Record(i, t, m) for i, t, m in rows}
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
                held = self.index.get_metadata(chunk)
            except KeyError as exc:
                raise SaveFormatError(f"{path}: saved records are missing from the index: {exc}") from None
            stale = [i for i, m in zip(chunk, held) if m != self._records[i].metadata]
            if stale:
                self.index.add(stale, self.index.get_vectors(stale), [self._records[i].metadata for i in stale])
