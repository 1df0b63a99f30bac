"""``GaussianVectorStore``: a LangChain ``VectorStore`` over ``ragcun.store.doc_store.DocStore`` (any ``VectorIndex``).

Text queries are hybrid by default: L2 and BM25 fused over both sides' candidates
(:mod:`ragcun.store.fusion`), like ``langchain-qdrant``'s ``retrieval_mode``: set it on the store
(a :class:`ragcun.RetrievalMode` or its string ``"hybrid" | "dense" | "sparse"``; ``"lexical"`` is an
alias of ``"sparse"``; ``alpha`` = dense weight; ``fusion``, ``normalization``, ``rrf_k``: see
:class:`ragcun.store.fusion.HybridFusion`) or per call / per retriever
(``as_retriever(search_kwargs={"retrieval_mode": "dense", "fusion": "rrf"})``). Searches by vector are dense.
``similarity_search_with_score`` returns Euclidean distances in the mode's order (lower is
closer, like LangChain's FAISS store, whose are squared), and its ``score_threshold=`` keeps the hits
within that distance (FAISS keeps its squared distances ``<=`` it), as ``similarity_search`` does;
``similarity_search_with_relevance_scores`` and the
``similarity_score_threshold`` retriever use scores in [0, 1]: ``P(relevant)`` from the model's
relevance calibrator (:mod:`ragcun.scoring.calibrator`; ``score_mode="relevance"``, the default when the
embedding model carries one, as ``GaussianEmbeddings()`` does), else the distance law of
:mod:`ragcun.scoring.distance_law` (dense) or the fused score (hybrid, sparse): ``ragcun.Hit.score``. ``filter`` is a metadata
dict read as LangChain's FAISS store reads it (``ragcun.index.filters``: equality, a list value =
membership, ``$gt``, ``$in``, ``$neq``, ``$and`` ...), pushed down to indexes that filter themselves
(Milvus), or a callable taking the metadata dict, as FAISS calls it. ``delete(filter=...)`` takes the
same filters. ``fetch_k`` (FAISS: how many nearest documents a filtered search fetches before filtering)
is checked and needs no role: ragcun's filtered search widens until ``k`` documents pass, so it
returns FAISS's results whenever FAISS's ``fetch_k`` nearest hold ``k`` matches, and the ``k`` nearest
matches when they do not. A keyword argument a method does not take is a ``TypeError`` naming it.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import VectorIndex, as_list, check_k, check_kwargs, check_threshold
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.store.calibrated import CalibratorSource
from ragcun.store.doc_store import DocStore, Hit, Record, scored_store
from ragcun.store.fusion import (
    DEFAULT_CANDIDATES,
    DEFAULT_RRF_K,
    FusionMethod,
    check_fusion,
    check_rrf_k,
    fitted_fusion,
    resolve_weights,
    search_fusion,
)
from ragcun.store.modes import RetrievalMode
from ragcun.store.persistence import FRAMEWORK_KEY

FRAMEWORK = "langchain"
"""This adapter's name in the saves it writes (``extra["framework"]``)."""
NODE_CONTENT = "_node_content"
"""The metadata key under which LlamaIndex stores a node's JSON (its own metadata included)."""

Filter = dict[str, Any] | Callable[[dict[str, Any]], bool] | None
DEFAULT_FETCH_K = 20
"""``fetch_k``'s default, as in LangChain's FAISS store."""
_TEXT_KWARGS = ("retrieval_mode", "alpha", "fusion", "normalization", "rrf_k")
"""Keyword arguments of the searches by query text beyond FAISS's."""


def _doc(record: Record) -> Document:
    return Document(id=record.id, page_content=record.text, metadata=dict(record.metadata))


def _accept(method: str, kwargs: dict[str, Any], allowed: Sequence[str] = ()) -> dict[str, Any]:
    """``kwargs`` when ``GaussianVectorStore.<method>`` takes each of them; else a ``TypeError`` naming the others."""
    return check_kwargs(f"GaussianVectorStore.{method}", kwargs, allowed)


def _as_documents(records: list[Record], extra: dict[str, Any]) -> list[Record]:
    """A save's records as this store holds them: a LlamaIndex save's nodes (any save not written by this
    adapter whose record carries ``_node_content``) keep only the node's own metadata, as a LangChain save would."""
    if extra.get(FRAMEWORK_KEY) == FRAMEWORK:
        return records
    return [_node_record(r) if NODE_CONTENT in r.metadata else r for r in records]


def _node_record(record: Record) -> Record:
    """``record`` (a LlamaIndex node's) with the node's own metadata in place of LlamaIndex's storage keys."""
    try:
        metadata = json.loads(record.metadata[NODE_CONTENT])["metadata"]
    except (TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"record {record.id!r}: its LlamaIndex node content is unreadable ({exc!r})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"record {record.id!r}: its LlamaIndex node metadata is not an object")
    return Record(record.id, record.text, metadata)


def _spec(filter: Filter) -> Any:
    """The core filter spec of a LangChain ``filter``: a dict as is; a callable is called with each document's
    metadata dict, as LangChain's FAISS store calls it (one written for a ``Document`` fails with a ``TypeError``
    that says so, never a silent empty result)."""
    if not callable(filter):
        return filter
    check = filter

    def on_metadata(metadata: dict[str, Any]) -> bool:
        try:
            return bool(check(metadata))
        except AttributeError as exc:
            raise TypeError(f"a callable filter is called with a document's metadata dict, as LangChain's FAISS "
                            f"store calls it, not with a Document ({exc})") from exc
    return on_metadata


def _within(hits: list[Hit], score_threshold: Any) -> list[Hit]:
    """``hits`` whose Euclidean distance is at most ``score_threshold`` (``None``: all)."""
    if score_threshold is None:
        return hits
    limit = check_threshold(score_threshold, "score_threshold")
    return [h for h in hits if h.distance <= limit]


class GaussianVectorStore(VectorStore):
    """LangChain vector store on a ragcun ``VectorIndex`` (default ``L2Index``): hybrid L2 + BM25 by default.

    ``retrieval_mode``: ``"hybrid"`` (default), ``"dense"`` or ``"sparse"`` (alias ``"lexical"``), as a
    :class:`ragcun.RetrievalMode` or its string; ``fusion``: ``"convex"`` (default), ``"rrf"`` or a callable
    ``fn(dense_scores, sparse_scores)`` (:class:`ragcun.store.fusion.HybridFusion`); ``normalization``
    (convex fusion): ``"fixed-floor"``, ``"minmax"`` or ``"zscore"``; ``alpha``: the dense weight;
    ``alpha=None`` / ``normalization=None`` (defaults): the embedding model's fitted weight
    (``fusion_settings``) if it has one, else 0.8 with fixed floors (:func:`ragcun.store.fusion.resolve_weights`);
    ``rrf_k``: RRF's constant (60); ``candidates``: how many candidates each side contributes; ``lexical``: a
    ``ragcun.index.lexical.bm25.BM25Index`` with another language's analyzer.
    Search methods taking a query string accept ``retrieval_mode=``, ``alpha=``, ``fusion=``,
    ``normalization=`` and ``rrf_k=`` per call.
    ``score_mode``: ``"relevance"`` (``P(relevant)``; the default when ``calibrator`` or the
    embedding model carries a relevance calibrator) or a distance-law mode of ``ragcun.scoring.distance_law``
    (``"auto"``, the default otherwise, ``"isotropic"``, ``"empirical"``); ``calibrator``: a
    ``RelevanceCalibrator`` or a model carrying one (default: the embedding model's).
    These are the LlamaIndex ``GaussianVectorStore``'s parameters, with the same names and defaults.
    """

    def __init__(self, embedding: Embeddings, index: VectorIndex | None = None, score_mode: str | None = None,
                 *, retrieval_mode: RetrievalMode | str = RetrievalMode.HYBRID, alpha: float | None = None,
                 candidates: int = DEFAULT_CANDIDATES, lexical: BM25Index | None = None,
                 calibrator: CalibratorSource = None, store: DocStore | None = None, fusion: FusionMethod = "convex",
                 normalization: str | None = None, rrf_k: int = DEFAULT_RRF_K) -> None:
        self.embedding = embedding
        self.retrieval_mode, self.alpha, self.normalization = RetrievalMode.parse(retrieval_mode), alpha, normalization
        self.fusion, self.rrf_k, self._fitted = check_fusion(fusion), check_rrf_k(rrf_k), fitted_fusion(embedding)
        resolve_weights(alpha, normalization, self._fitted)  # checks them now
        self.candidates = check_k(candidates, "candidates")
        self.store = scored_store(store, index, lexical, score_mode,
                                  calibrator if calibrator is not None else getattr(embedding, "relevance_calibrator", None))

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model."""
        return self.embedding

    # -- writes -------------------------------------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Embed and store ``texts``; an existing id is replaced. Returns the ids (new ones are UUIDs).

        A ``None`` among ``ids`` (``add_documents`` passes one for a document without an id) gets a UUID; a bare
        string as ``texts`` is a ``TypeError`` (it would otherwise be stored one character per record)."""
        _accept("add_texts", kwargs)
        texts = as_list(texts, "texts")
        return self.add_embeddings(zip(texts, self.embedding.embed_documents(texts) if texts else []),
                                   metadatas, ids=ids)

    def add_embeddings(self, text_embeddings: Iterable[tuple[str, Sequence[float]]],
                       metadatas: list[dict] | None = None, *, ids: Sequence[str | None] | None = None,
                       **kwargs: Any) -> list[str]:
        """Store already embedded ``(text, embedding)`` pairs (as LangChain's FAISS store does); returns the ids."""
        _accept("add_embeddings", kwargs)
        pairs = as_list(text_embeddings, "text_embeddings")
        texts = [t for t, _ in pairs]
        ids = None if ids is None else as_list(ids)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts")
        if not texts:
            return []
        vectors = [v for _, v in pairs]
        ids_ = [i or str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        metas = metadatas or [{} for _ in texts]
        return self.store.add([Record(i, t, dict(m or {})) for i, t, m in zip(ids_, texts, metas)], vectors)

    def delete(self, ids: list[str] | None = None, filter: Filter = None, **kwargs: Any) -> bool:
        """Delete ``ids`` (unknown ids are ignored), or the documents matching ``filter`` (the search methods'
        filters); neither deletes everything, both is a ``ValueError``. A call that errors deletes nothing."""
        _accept("delete", kwargs)
        if ids is not None and filter is not None:
            raise ValueError("delete takes ids or filter, not both; got ids and filter")
        if filter is not None:
            self.store.delete_where(filter=_spec(filter))
        elif ids is None:
            self.store.clear()
        else:
            self.store.delete(ids)
        return True

    async def adelete(self, ids: list[str] | None = None, filter: Filter = None, **kwargs: Any) -> bool:
        """Async :meth:`delete`."""
        return await asyncio.to_thread(self.delete, ids, filter, **kwargs)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for ``ids`` that exist, in the order asked."""
        return [_doc(r) for r in self.store.get(ids)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids` (runs in a worker thread, as every async method here does)."""
        return await asyncio.to_thread(self.get_by_ids, ids)

    # -- search -------------------------------------------------------------------------------
    def _hits(self, embedding: Sequence[float], k: int, filter: Filter, fetch_k: int,
              score_threshold: Any = None) -> list[Hit]:
        check_k(fetch_k, "fetch_k")
        hits = self.store.search(np.asarray(embedding, dtype=np.float32), k, filter=_spec(filter))
        return _within(hits, score_threshold)

    def _text_hits(self, query: str, k: int, filter: Filter, fetch_k: int, retrieval_mode: RetrievalMode | str | None = None,
                   alpha: float | None = None, fusion: FusionMethod | None = None, normalization: str | None = None,
                   rrf_k: int | None = None, score_threshold: Any = None, *, distances: bool = False) -> list[Hit]:
        """Hits for a query string in ``retrieval_mode`` (default: the store's); sparse embeds the query only
        for its ``distances`` (asked, or needed by ``score_threshold``). Each fusion argument left ``None`` is the
        store's."""
        check_k(fetch_k, "fetch_k")
        mode = RetrievalMode.parse(retrieval_mode or self.retrieval_mode)
        how = search_fusion(self, self._fitted, alpha=alpha, normalization=normalization, fusion=fusion, rrf_k=rrf_k)
        embed = mode is not RetrievalMode.SPARSE or distances or score_threshold is not None
        vector = np.asarray(self.embedding.embed_query(query), dtype=np.float32) if embed else None
        hits = self.store.search(vector, k, text=query, mode=mode, candidates=self.candidates, filter=_spec(filter), **how)
        return _within(hits, score_threshold)

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4, filter: Filter = None,
                                               fetch_k: int = DEFAULT_FETCH_K,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        """``(document, euclidean_distance)`` pairs nearest to ``embedding``, nearest first (``score_threshold``:
        the largest distance kept)."""
        kwargs = _accept("similarity_search_with_score_by_vector", kwargs, ("score_threshold",))
        return [(_doc(h.record), h.distance) for h in self._hits(embedding, k, filter, fetch_k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Filter = None,
                                     fetch_k: int = DEFAULT_FETCH_K, **kwargs: Any) -> list[tuple[Document, float]]:
        """``(document, euclidean_distance)`` pairs for ``query``, best first in the retrieval mode's ranking
        (``score_threshold``: the largest distance kept)."""
        kwargs = _accept("similarity_search_with_score", kwargs, (*_TEXT_KWARGS, "score_threshold"))
        hits = self._text_hits(query, k, filter, fetch_k, **kwargs, distances=True)
        return [(_doc(h.record), h.distance) for h in hits]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: Filter = None,
                                    fetch_k: int = DEFAULT_FETCH_K, **kwargs: Any) -> list[Document]:
        """Documents nearest to ``embedding`` (``score_threshold``: the largest Euclidean distance kept)."""
        kwargs = _accept("similarity_search_by_vector", kwargs, ("score_threshold",))
        return [_doc(h.record) for h in self._hits(embedding, k, filter, fetch_k, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, filter: Filter = None, fetch_k: int = DEFAULT_FETCH_K,
                          **kwargs: Any) -> list[Document]:
        """Documents for ``query``, best first (``retrieval_mode=`` / ``alpha=`` override the store's;
        ``score_threshold``: the largest Euclidean distance kept)."""
        kwargs = _accept("similarity_search", kwargs, (*_TEXT_KWARGS, "score_threshold"))
        return [_doc(h.record) for h in self._text_hits(query, k, filter, fetch_k, **kwargs)]

    def _similarity_search_with_relevance_scores(self, query: str, k: int = 4, filter: Filter = None,
                                                 fetch_k: int = DEFAULT_FETCH_K,
                                                 **kwargs: Any) -> list[tuple[Document, float]]:
        kwargs = _accept("similarity_search_with_relevance_scores", kwargs, _TEXT_KWARGS)
        return [(_doc(h.record), h.score) for h in self._text_hits(query, k, filter, fetch_k, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """A dense hit's relevance score from its L2 distance (the calibrator's distance terms, else the distance
        law). A hybrid hit's also reads its BM25 share: :meth:`similarity_search_with_relevance_scores` gives it."""
        score = self.store.distance_score()
        return lambda distance: float(score(distance))

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: Filter = None,
                                                **kwargs: Any) -> list[Document]:
        """``k`` documents chosen by Euclidean MMR (``ragcun.store.mmr``) among the ``fetch_k`` nearest that
        pass ``filter`` (FAISS filters its ``2 * fetch_k`` nearest)."""
        _accept("max_marginal_relevance_search_by_vector", kwargs)
        hits = self.store.mmr_search(np.asarray(embedding, dtype=np.float32), k, fetch_k, lambda_mult,
                                     filter=_spec(filter))
        return [_doc(h.record) for h in hits]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Filter = None, **kwargs: Any) -> list[Document]:
        """``k`` documents chosen by Euclidean MMR among the ``fetch_k`` nearest to ``query``."""
        _accept("max_marginal_relevance_search", kwargs)
        return self.max_marginal_relevance_search_by_vector(self.embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter)

    def calibrate(self, judgements: Sequence[tuple[str | Sequence[float], str, bool]]) -> RelevanceCalibrator:
        """Fit ``P(relevant)`` on judged ``(query text or vector, document id, relevant)`` hits at this store's
        distances (queries embedded with ``embed_query``); it scores later hits and is saved with the store."""
        return self.store.fit_calibrator(judgements, lambda texts: [self.embedding.embed_query(t) for t in texts])

    # -- construction and persistence ---------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, index: VectorIndex | None = None, score_mode: str | None = None,
                   **kwargs: Any) -> GaussianVectorStore:
        """A new store holding ``texts``; ``kwargs`` (``retrieval_mode``, ``alpha``, ...) go to the constructor."""
        store = cls(embedding, index=index, score_mode=score_mode, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def save_local(self, folder_path: str | os.PathLike) -> None:
        """Atomically save documents, index and score state to ``folder_path`` (FAISS file + JSON, no pickle)."""
        self.store.save(folder_path, extra={FRAMEWORK_KEY: FRAMEWORK})

    @classmethod
    def load_local(cls, folder_path: str | os.PathLike, embeddings: Embeddings, *,
                   index: VectorIndex | None = None, allow_dangerous_deserialization: bool = False,
                   **kwargs: Any) -> GaussianVectorStore:
        """Load a :meth:`save_local` folder (verified), or a LlamaIndex ``GaussianVectorStore``'s or a
        ``DocStore``'s save: the same texts, vectors and user metadata (a node's own metadata). Nothing is
        unpickled, so ``allow_dangerous_deserialization`` is accepted for drop-in compatibility and ignored;
        ``kwargs`` (``retrieval_mode``, ``alpha``, ...) go to the constructor. A calibrator saved with the store
        (say one :meth:`calibrate` fitted) stays; the embedding model's scores a store saved without one."""
        store, _ = DocStore.load(folder_path, index=index, convert=_as_documents)
        kwargs.setdefault("calibrator", store.calibrator)
        return cls(embeddings, store=store, **kwargs)
