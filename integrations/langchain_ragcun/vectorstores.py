"""``GaussianVectorStore``: a LangChain ``VectorStore`` over ``ragcun.store.doc_store.DocStore`` (any ``VectorIndex``).

Text queries are hybrid by default: L2 and BM25 fused over both sides' candidates
(:mod:`ragcun.store.fusion`), like ``langchain-qdrant``'s ``retrieval_mode``: set it on the store
(a :class:`ragcun.RetrievalMode` or its string ``"hybrid" | "dense" | "sparse"``; ``"lexical"`` is an
alias of ``"sparse"``; ``alpha`` = dense weight; ``fusion``, ``normalization``, ``rrf_k``: see
:class:`ragcun.store.fusion.HybridFusion`) or per call / per retriever
(``as_retriever(search_kwargs={"retrieval_mode": "dense", "fusion": "rrf"})``). Searches by vector are dense. ``similarity_search_with_score`` returns Euclidean distances in the mode's order (lower is
closer, like LangChain's FAISS store); ``similarity_search_with_relevance_scores`` and the
``similarity_score_threshold`` retriever use scores in [0, 1]: ``P(relevant)`` from the model's
relevance calibrator (:mod:`ragcun.scoring.calibrator`; ``score_mode="relevance"``, the default when the
embedding model carries one, as ``GaussianEmbeddings()`` does), else the distance law of
:mod:`ragcun.scoring.distance_law` (dense) or the fused score (hybrid, sparse): ``ragcun.Hit.score``. ``filter`` is a metadata
dict (``ragcun.index.filters`` syntax: equality, ``$gt``, ``$in``, ``$and`` ...), pushed down to indexes
that filter themselves (Milvus), or a callable taking a ``Document``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import VectorIndex, as_list, check_k
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
)
from ragcun.store.modes import RetrievalMode

Filter = dict[str, Any] | Callable[[Document], bool] | None


def _doc(record: Record) -> Document:
    return Document(id=record.id, page_content=record.text, metadata=dict(record.metadata))


def _mode_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``retrieval_mode`` / ``alpha`` a caller passed among a search method's ``kwargs``."""
    return {key: kwargs[key] for key in ("retrieval_mode", "alpha") if key in kwargs}


def _criteria(filter: Filter) -> dict[str, Any]:
    """``DocStore.search`` arguments for a LangChain ``filter``: a metadata spec dict, or a ``Document`` check."""
    if callable(filter):
        return {"where": lambda rec: bool(filter(_doc(rec)))}
    return {"filter": filter}


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
        texts = as_list(texts, "texts")
        return self.add_embeddings(zip(texts, self.embedding.embed_documents(texts) if texts else []),
                                   metadatas, ids=ids)

    def add_embeddings(self, text_embeddings: Iterable[tuple[str, Sequence[float]]],
                       metadatas: list[dict] | None = None, *, ids: Sequence[str | None] | None = None,
                       **kwargs: Any) -> list[str]:
        """Store already embedded ``(text, embedding)`` pairs (as LangChain's FAISS store does); returns the ids."""
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

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete ``ids`` (unknown ids are ignored); ``None`` deletes everything."""
        if ids is None:
            self.store.clear()
        else:
            self.store.delete(ids)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Async :meth:`delete`."""
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for ``ids`` that exist, in the order asked."""
        return [_doc(r) for r in self.store.get(ids)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids` (runs in a worker thread, as every async method here does)."""
        return await asyncio.to_thread(self.get_by_ids, ids)

    # -- search -------------------------------------------------------------------------------
    def _hits(self, embedding: Sequence[float], k: int, filter: Filter) -> list[Hit]:
        return self.store.search(np.asarray(embedding, dtype=np.float32), k, **_criteria(filter))

    def _text_hits(self, query: str, k: int, filter: Filter, retrieval_mode: RetrievalMode | str | None = None,
                   alpha: float | None = None, fusion: FusionMethod | None = None, normalization: str | None = None,
                   rrf_k: int | None = None) -> list[Hit]:
        """Hits for a query string in ``retrieval_mode`` (default: the store's); sparse needs no embedding.
        Each fusion argument left ``None`` is the store's."""
        mode = RetrievalMode.parse(retrieval_mode or self.retrieval_mode)
        alpha, normalization = resolve_weights(self.alpha if alpha is None else alpha,
                                               self.normalization if normalization is None else normalization, self._fitted)
        vector = None if mode is RetrievalMode.SPARSE else np.asarray(self.embedding.embed_query(query), dtype=np.float32)
        return self.store.search(vector, k, text=query, mode=mode, alpha=alpha, candidates=self.candidates,
                                 fusion=self.fusion if fusion is None else fusion, normalization=normalization,
                                 rrf_k=self.rrf_k if rrf_k is None else rrf_k, **_criteria(filter))

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4, filter: Filter = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        """``(document, euclidean_distance)`` pairs nearest to ``embedding``, nearest first."""
        return [(_doc(h.record), h.distance) for h in self._hits(embedding, k, filter)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Filter = None, *,
                                     fusion: FusionMethod | None = None, normalization: str | None = None,
                                     rrf_k: int | None = None, **kwargs: Any) -> list[tuple[Document, float]]:
        """``(document, euclidean_distance)`` pairs for ``query``, best first in the retrieval mode's ranking."""
        hits = self._text_hits(query, k, filter, fusion=fusion, normalization=normalization, rrf_k=rrf_k,
                               **_mode_args(kwargs))
        return [(_doc(h.record), h.distance) for h in hits]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: Filter = None,
                                    **kwargs: Any) -> list[Document]:
        """Documents nearest to ``embedding``."""
        return [_doc(h.record) for h in self._hits(embedding, k, filter)]

    def similarity_search(self, query: str, k: int = 4, filter: Filter = None, *, fusion: FusionMethod | None = None,
                          normalization: str | None = None, rrf_k: int | None = None, **kwargs: Any) -> list[Document]:
        """Documents for ``query``, best first (``retrieval_mode=``, ``alpha=``, ``fusion=``, ``normalization=``,
        ``rrf_k=`` override the store's)."""
        hits = self._text_hits(query, k, filter, fusion=fusion, normalization=normalization, rrf_k=rrf_k,
                               **_mode_args(kwargs))
        return [_doc(h.record) for h in hits]

    def _similarity_search_with_relevance_scores(self, query: str, k: int = 4, filter: Filter = None, *,
                                                 fusion: FusionMethod | None = None, normalization: str | None = None,
                                                 rrf_k: int | None = None, **kwargs: Any) -> list[tuple[Document, float]]:
        hits = self._text_hits(query, k, filter, fusion=fusion, normalization=normalization, rrf_k=rrf_k,
                               **_mode_args(kwargs))
        return [(_doc(h.record), h.score) for h in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        score = self.store.distance_score()
        return lambda distance: float(score(distance))

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: Filter = None,
                                                **kwargs: Any) -> list[Document]:
        """``k`` documents chosen by Euclidean MMR (``ragcun.store.mmr``) among the ``fetch_k`` nearest."""
        hits = self.store.mmr_search(np.asarray(embedding, dtype=np.float32), k, fetch_k, lambda_mult,
                                     **_criteria(filter))
        return [_doc(h.record) for h in hits]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Filter = None, **kwargs: Any) -> list[Document]:
        """``k`` documents chosen by Euclidean MMR among the ``fetch_k`` nearest to ``query``."""
        return self.max_marginal_relevance_search_by_vector(self.embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter)

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
        self.store.save(folder_path)

    @classmethod
    def load_local(cls, folder_path: str | os.PathLike, embeddings: Embeddings, *,
                   index: VectorIndex | None = None, allow_dangerous_deserialization: bool = False,
                   **kwargs: Any) -> GaussianVectorStore:
        """Load a :meth:`save_local` folder (verified). Nothing is unpickled, so
        ``allow_dangerous_deserialization`` is accepted for drop-in compatibility and ignored;
        ``kwargs`` (``retrieval_mode``, ``alpha``, ...) go to the constructor."""
        store, _ = DocStore.load(folder_path, index=index)
        return cls(embeddings, store=store, **kwargs)
