"""``MilvusL2Index``: the ``VectorIndex`` protocol on Milvus (a cluster by URI, or embedded Milvus Lite).

The same code runs on Milvus Lite (``uri="./ragcun.db"``, a local directory served in-process, see
:mod:`ragcun.index.milvus.lite`) and on a Milvus server or cluster (``uri="http://HOST:19530"``).
Vectors are ranked by Milvus's L2 metric; Milvus reports squared distances, this class returns
their square root so results match ``ragcun.index.faiss_l2.L2Index``. Each row also holds a JSON
``metadata`` field so stores can push metadata filters down into Milvus (see
:mod:`ragcun.index.milvus.filters`) and, by default, its text for Milvus's native BM25 search (see
:mod:`ragcun.index.milvus.text`).

``pymilvus`` is an optional extra (``pip install "ragcun[milvus]"``) imported only when a
``MilvusL2Index`` is created, so ``import ragcun`` never needs it.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcun.index.milvus import lite as milvus_lite
from ragcun.index.milvus import schema
from ragcun.index.milvus.client import connect
from ragcun.index.milvus.filters import ID_FIELD, METADATA_FIELD, filter_expression, id_expression
from ragcun.index.milvus.recovery import reconcile
from ragcun.index.milvus.rows import QUERY_BATCH as _QUERY_BATCH
from ragcun.index.milvus.rows import batches as _batches
from ragcun.index.milvus.rows import count_rows, fetch_rows
from ragcun.index.milvus.schema import (
    LITE_MISSING,
    MAX_ID_BYTES,
    SPARSE_FIELD,
    VECTOR_FIELD,
    create_collection,
    normalise_index_params,
    open_collection,
)
from ragcun.index.milvus.text import STEMS_FIELD, analysis_mode, english_terms, stored_texts
from ragcun.index.protocol import IndexCapabilities, as_matrix, check_ids, check_k, l2_distances, padded_result

if TYPE_CHECKING:
    from pymilvus import MilvusClient

MAX_TOPK = 16_384
"""Milvus returns at most this many neighbours per query."""
_SEARCH_BATCH = 256  # query rows per search request
# Milvus Lite's exact L2 materialises (queries, rows, dim) float32 differences: cap that per request
_LITE_SEARCH_BYTES = 256 * 2 ** 20


_MOVED_TO_SCHEMA = ("BM25_FUNCTION", "BM25_PARAMS", "INDEX_TYPES")


def __getattr__(name: str) -> Any:
    """Deprecated: the collection's constants that moved to :mod:`ragcun.index.milvus.schema`."""
    if name not in _MOVED_TO_SCHEMA:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} moved to ragcun.index.milvus.schema; import it from there",
                  DeprecationWarning, stacklevel=2)
    return getattr(schema, name)


def _bm25_score(distance: float) -> float:
    """A BM25 hit's score: Milvus servers report it as is, Milvus Lite negated (so it sorts ascending)."""
    return abs(float(distance))


class MilvusL2Index:
    """String-keyed vectors in a Milvus collection, searched by Euclidean distance; implements ``VectorIndex``.

    ``uri`` is a Milvus Lite file (``"./ragcun.db"``) or a server (``"http://HOST:19530"``, with
    ``token="user:password"`` where auth is on). The collection holds a VARCHAR primary key ``id``,
    a FLOAT_VECTOR ``vector``, a JSON ``metadata`` and, with ``lexical=True`` (the default), an
    analysed VARCHAR (``stems`` or ``text``, see below) feeding Milvus's BM25 function into a SPARSE_FLOAT_VECTOR
    ``sparse`` (k1 = 1.5, b = 0.75) for :meth:`lexical_search` / :meth:`lexical_scores`. It is
    created on the first ``add`` (or at once when ``dim`` is given), or opened and checked if it
    exists; an existing collection keeps its schema, so one made without text opens with
    ``capabilities.lexical`` False. ``analyzer_params``: ``None`` analyses texts in English on the
    client and stores their ``stems`` (see :mod:`ragcun.index.milvus.text`); a mapping stores the raw
    ``text`` for Milvus to analyse with it.
    ``index_params`` picks the vector index: ``{"index_type": "HNSW", "params": {"M": 16,
    "efConstruction": 200}, "search_params": {"ef": 64}}``; the default is exact ``FLAT``. Every
    read uses Strong consistency, so a search right after ``add`` or ``remove`` sees it. A Milvus
    Lite file left by a crashed process is reconciled on open (see
    :func:`ragcun.index.milvus.recovery.reconcile`). Call :meth:`close` (or use ``with``) to free the
    connection and, for Milvus Lite, the file lock.
    """

    capabilities = IndexCapabilities(metadata_filter=True, lexical=True)

    def __init__(self, uri: str, collection: str = "ragcun", dim: int | None = None,
                 index_params: Mapping[str, Any] | None = None, *, lexical: bool = True,
                 analyzer_params: Mapping[str, Any] | None = None, token: str = "",
                 timeout: float | None = None, batch_size: int = 1_000) -> None:
        self.uri = str(uri)
        self.collection = collection
        self._where = f"Milvus collection {collection!r} at {self.uri!r}"
        if dim is not None and (not isinstance(dim, int) or dim <= 0):
            raise ValueError(f"{self._where}: dim must be a positive int or None; got {dim!r}")
        if batch_size <= 0:
            raise ValueError(f"{self._where}: batch_size must be positive; got {batch_size!r}")
        self._explicit_index = index_params is not None
        try:
            self._index_params = normalise_index_params(index_params)
            # the text field's name (``None``: no lexical side) and its Milvus analyzer
            self._text: str | None
            self._text, self._analyzer = analysis_mode(analyzer_params) if lexical else (None, {})
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None
        self._explicit_analyzer = analyzer_params is not None
        self.capabilities = IndexCapabilities(metadata_filter=True, lexical=self._text is not None)
        self._lite_path = os.path.abspath(self.uri) if milvus_lite.is_lite_uri(self.uri) else None
        if self._lite_path and self._index_params["index_type"] in LITE_MISSING:
            raise ValueError(f"{self._where}: Milvus Lite cannot build {self._index_params['index_type']}; "
                             "use FLAT, IVF_FLAT or HNSW locally, or a Milvus server")
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._dim: int | None = None
        self._created = False
        self._unflushed = False  # Lite rows not yet in a segment (BM25 statistics of those depend on filters)
        self._client: MilvusClient | None = None
        self._client, crashed = connect(self.uri, collection, self._lite_path, token, timeout, self._where)
        try:
            if self._live.has_collection(collection):
                self._open_existing(dim)
                if crashed:
                    fields = [ID_FIELD, VECTOR_FIELD, METADATA_FIELD] + ([self._text] if self._text else [])
                    reconcile(self._live, collection, fields, self.batch_size, self._where)
            elif dim is not None:
                self._create(dim)
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection; for Milvus Lite, stop the embedded server once no index in this process uses the file.

        Stopping it releases the file so another process can open it; a raw ``MilvusClient`` on
        the same file in this process loses its server too.
        """
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        client.close()
        if self._lite_path:
            milvus_lite.release(self._lite_path)

    def __enter__(self) -> MilvusL2Index:
        """The index itself; :meth:`close` runs on leaving the ``with`` block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the index."""
        self.close()

    def __repr__(self) -> str:
        """Where the index lives and how it searches."""
        return (f"MilvusL2Index(uri={self.uri!r}, collection={self.collection!r}, dim={self._dim}, "
                f"index_type={self._index_params['index_type']!r}, lexical={self.capabilities.lexical})")

    @property
    def _live(self) -> MilvusClient:
        if self._client is None:
            raise RuntimeError(f"{self._where}: the index is closed")
        return self._client

    # -- schema -----------------------------------------------------------------------------------
    def _create(self, dim: int) -> None:
        create_collection(self._live, self.collection, dim, self._index_params, self._text, self._analyzer, self._where)
        self._dim, self._created = dim, True

    def _open_existing(self, dim: int | None) -> None:
        layout = open_collection(
            self._live, self.collection, self._where, dim=dim,
            index_type=self._index_params["index_type"] if self._explicit_index else None,
            analysis=(self._text, self._analyzer) if self._explicit_analyzer else None)
        self._index_params["index_type"], self._text, self._analyzer = layout.index_type, layout.text, layout.analyzer
        self.capabilities = IndexCapabilities(metadata_filter=True, lexical=self._text is not None)
        self._dim, self._created = layout.dim, True
        self._unflushed = self._lite_path is not None and self._text is not None

    # -- protocol -------------------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        """Vector dimension, or ``None`` before the first add."""
        return self._dim

    @property
    def count(self) -> int:
        """Number of stored vectors (exact, deletes included)."""
        with self._lock:
            if not self._created:
                return 0
            return count_rows(self._live, self.collection)

    def __len__(self) -> int:
        """:attr:`count`."""
        return self.count

    def add(self, ids: Sequence[str], vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any] | None] | None = None,
            texts: Sequence[str | None] | None = None) -> None:
        """Store ``vectors`` (N, D) under ``ids`` (an existing id is replaced), in batches.

        ``metadata`` (one JSON-serialisable mapping per id, or ``None``) is stored in the JSON
        field that :meth:`search`'s ``filter`` reads; without it a row's metadata is ``{}``.
        ``texts`` (one per id; ``None`` or ``""`` for none) feed the lexical search; a row without
        text never matches lexically. Like its vector and metadata, a replaced row's text is
        replaced: re-adding an id without its text removes the text from the lexical side. A text longer than Milvus's VARCHAR (65,535 UTF-8 bytes,
        after analysis) raises ``ValueError`` naming its id, and nothing is stored.
        """
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            arr = self._matrix(vectors, "vectors")
            if len(ids) != len(arr):
                raise ValueError(f"{self._where}: got {len(ids)} ids for {len(arr)} vectors")
            if len(set(ids)) != len(ids):
                raise ValueError(f"{self._where}: ids contain duplicates")
            if metadata is not None and len(metadata) != len(ids):
                raise ValueError(f"{self._where}: got {len(metadata)} metadata entries for {len(ids)} ids")
            if texts is not None and (isinstance(texts, str) or len(texts) != len(ids)):
                raise ValueError(f"{self._where}: texts must be a sequence of one text (or None) per id; "
                                 f"got {'a single string' if isinstance(texts, str) else len(texts)} for {len(ids)} ids")
            if texts is not None and self._text is None:
                raise ValueError(f"{self._where} has no text field (made with lexical=False): it cannot store texts")
            if not ids:
                return
            rows = [{ID_FIELD: i, VECTOR_FIELD: v, METADATA_FIELD: dict(m or {})}
                    for i, v, m in zip(ids, arr, metadata if metadata is not None else [None] * len(ids))]
            if self._text is not None:
                stored = stored_texts(ids, texts if texts is not None else [None] * len(ids),
                                      self._text == STEMS_FIELD, self._where)
                for row, text in zip(rows, stored):
                    row[self._text] = text
            if not self._created:
                self._create(arr.shape[1])
            client = self._live
            for batch in _batches(rows, self.batch_size):
                try:
                    client.upsert(self.collection, list(batch))
                except Exception as exc:
                    raise ValueError(f"{self._where}: upsert failed: {exc}") from exc
                self._unflushed = self._lite_path is not None

    def flush(self) -> None:
        """Seal buffered rows into segments so Milvus builds the index on them (call after a bulk add).

        Rows are searchable before this either way; until sealed, Milvus Lite scans them brute force.
        """
        with self._lock:
            if self._created:
                self._live.flush(self.collection)
                self._unflushed = False

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids`` (vectors, metadata and texts); returns how many were removed. Unknown ids raise ``KeyError`` (nothing removed)."""
        ids = list(dict.fromkeys(check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)))
        with self._lock:
            present = set(self._fetch(ids, [ID_FIELD]))
            missing = [i for i in ids if i not in present]
            if missing:
                raise KeyError(f"{self._where}: {len(missing)} unknown id(s), nothing removed: {missing[:5]!r}")
            for batch in _batches(ids, _QUERY_BATCH):
                self._live.delete(self.collection, filter=id_expression(batch))
            self._unflushed = self._unflushed or (self._lite_path is not None and bool(ids))
            return len(ids)

    def search(self, queries: np.ndarray, k: int,
               filter: object = None) -> tuple[list[list[str | None]], np.ndarray]:
        """The ``k`` nearest ids and Euclidean (not squared) distances per query row, nearest first.

        Rows with fewer than ``k`` (matching) stored vectors are padded with ``None`` ids and
        ``inf`` distances. ``filter`` narrows the search inside Milvus: a Milvus boolean
        expression string (used as is), or a ragcun filter spec on the stored metadata, translated
        by :func:`ragcun.index.milvus.filters.translate_filter` into a superset of its matches (exact for
        comparisons, ``$in``/``$nin``, ``$any``/``$all`` and their ``$and``/``$or``/``$not``), so
        apply the spec's predicate to the hits too.
        """
        k = self._check_k(k)
        expression = filter_expression(filter)
        with self._lock:
            q = self._matrix(queries, "queries")
            out_ids, out_d = padded_result(len(q), k)
            if not self._created:
                return out_ids, out_d
            client = self._live
            params = {"metric_type": "L2", "params": self._index_params["search_params"]}
            step = _SEARCH_BATCH
            if self._lite_path and len(q) > 1:
                step = max(1, min(step, _LITE_SEARCH_BYTES // (4 * (self._dim or 1) * max(1, self.count))))
            for start in range(0, len(q), step):
                try:
                    hits = client.search(self.collection, data=list(q[start:start + step]),
                                         limit=int(k), filter=expression, output_fields=[ID_FIELD],
                                         search_params=params, anns_field=VECTOR_FIELD,
                                         consistency_level="Strong")
                except Exception as exc:
                    raise ValueError(f"{self._where}: search failed (filter {expression!r}): {exc}") from exc
                for row, row_hits in enumerate(hits, start):
                    for j, hit in enumerate(row_hits):
                        out_ids[row][j] = hit["id"]
                        out_d[row, j] = math.sqrt(max(float(hit["distance"]), 0.0))
            return out_ids, out_d

    # -- lexical ----------------------------------------------------------------------------------
    def lexical_search(self, query: str, k: int, filter: object = None) -> tuple[list[str], np.ndarray]:
        """Ids and BM25 scores (float32, best first) of up to ``k`` rows matching a term of ``query``.

        Only rows with a positive score are returned; a query with no terms after analysis
        (empty, only stopwords, no word characters) gives an empty result. ``filter`` is pushed
        down exactly as in :meth:`search` (a superset of the spec's matches: re-check the hits).
        """
        k = self._check_k(k)
        expression = filter_expression(filter)
        with self._lock:
            text = self._lexical_query(query)
            if text is None or not self._created:
                return [], np.zeros(0, dtype=np.float32)
            hits = self._bm25_hits(text, k, expression)
            return [i for i, _ in hits], np.asarray([s for _, s in hits], dtype=np.float32)

    def lexical_scores(self, query: str, ids: Sequence[str]) -> np.ndarray:
        """The BM25 score (float32) of ``query`` for each of ``ids``: 0.0 where no term matches or a row has no text.

        Unknown ids raise ``KeyError``. Scores equal those :meth:`lexical_search` reports.
        """
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            text = self._lexical_query(query)
            unique = list(dict.fromkeys(ids))
            present = self._fetch(unique, [ID_FIELD])
            missing = [i for i in unique if i not in present]
            if missing:
                raise KeyError(f"{self._where}: {len(missing)} unknown id(s): {missing[:5]!r}")
            scores = dict.fromkeys(unique, 0.0)
            if text is not None:
                for batch in _batches(unique, _QUERY_BATCH):
                    scores.update(self._bm25_hits(text, len(batch), id_expression(batch)))
            return np.asarray([scores[i] for i in ids], dtype=np.float32)

    def _lexical_query(self, query: object) -> str | None:
        """``query`` as sent to Milvus (stems for English analysis), or ``None`` when it has no terms."""
        if self._text is None:
            raise ValueError(f"{self._where} has no text field (made with lexical=False): no lexical search")
        if not isinstance(query, str):
            raise TypeError(f"{self._where}: a lexical query must be a string; got {type(query).__name__}")
        text = " ".join(english_terms(query)) if self._text == STEMS_FIELD else query
        return text if text.strip() else None

    def _bm25_hits(self, text: str, k: int, expression: str) -> list[tuple[str, float]]:
        """``(id, score)`` of Milvus's BM25 search, best first, positive scores only."""
        if self._unflushed:
            # Milvus Lite scores unflushed rows with statistics of the rows a search keeps, so a
            # filter would change their scores: seal them first (a server keeps global statistics)
            self.flush()
        try:
            hits = self._live.search(self.collection, data=[text], anns_field=SPARSE_FIELD, limit=int(k),
                                     filter=expression, output_fields=[ID_FIELD],
                                     search_params={"metric_type": "BM25", "params": {}},
                                     consistency_level="Strong")
        except Exception as exc:
            raise ValueError(f"{self._where}: lexical search failed (filter {expression!r}): {exc}") from exc
        scored = [(hit["id"], _bm25_score(hit["distance"])) for hit in hits[0]]
        return sorted([(i, s) for i, s in scored if s > 0], key=lambda pair: -pair[1])

    # -- reads ------------------------------------------------------------------------------------
    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors for ``ids``, in order; unknown ids raise ``KeyError``."""
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            found = self._fetch_known(ids, VECTOR_FIELD)
            if self._dim is None:
                return np.zeros((0, 0), dtype=np.float32)
            if not ids:
                return np.zeros((0, self._dim), dtype=np.float32)
            return np.asarray([found[i][VECTOR_FIELD] for i in ids], dtype=np.float32)

    def distances(self, query: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """Euclidean distances (float32) from one ``query`` to the stored vectors of ``ids``, in order (the vectors
        are fetched and compared here, as :func:`ragcun.index.protocol.l2_distances`); unknown ids raise ``KeyError``."""
        q = self._matrix(query, "query vector")
        if len(q) != 1:
            raise ValueError(f"{self._where}: distances take one query vector; got {len(q)}")
        vectors = self.get_vectors(ids)
        return l2_distances(q, vectors) if len(vectors) else np.zeros(0, dtype=np.float32)

    def get_metadata(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored metadata for ``ids``, in order; unknown ids raise ``KeyError``."""
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            found = self._fetch_known(ids, METADATA_FIELD)
            return [dict(found[i][METADATA_FIELD] or {}) for i in ids]

    # -- helpers --------------------------------------------------------------------------------
    def _fetch_known(self, ids: list[str], field: str) -> dict[str, dict[str, Any]]:
        """``field`` of every one of ``ids`` (under the caller's lock); ``KeyError`` naming the unknown ones."""
        found = self._fetch(list(dict.fromkeys(ids)), [field])
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"{self._where}: {len(missing)} unknown id(s): {missing[:5]!r}")
        return found

    def _check_k(self, k: object) -> int:
        k = check_k(k, f"{self._where}: k")
        if k > MAX_TOPK:
            raise ValueError(f"{self._where}: Milvus returns at most {MAX_TOPK} neighbours per query; got k={k}")
        return k

    def _matrix(self, vectors: object, what: str) -> np.ndarray:
        try:
            return as_matrix(vectors, self._dim, what)
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None

    def _fetch(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows (``fields`` plus ``id``) of those ``ids`` that exist, keyed by id."""
        if not self._created or not ids:
            return {}
        return fetch_rows(self._live, self.collection, ids, fields)
