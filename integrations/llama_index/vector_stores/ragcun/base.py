"""``GaussianVectorStore``: a LlamaIndex vector store over ``ragcun.store.doc_store.DocStore`` (any ``VectorIndex``).

Nodes are stored as text plus LlamaIndex's own metadata dict (``node_to_metadata_dict``); search,
filtering, MMR, scores, fallbacks and persistence are the core's; this adapter only maps query modes
onto the core's :class:`ragcun.RetrievalMode`: ``HYBRID`` -> hybrid (``query.alpha`` = dense weight,
1 = dense only; ``fusion``, ``normalization`` and ``rrf_k`` per query through the retriever's
``vector_store_kwargs``, else the store's fields), ``TEXT_SEARCH`` / ``SPARSE`` -> sparse (BM25 alone), and ``DEFAULT`` -> the store's
``retrieval_mode`` (``"hybrid"`` unless set otherwise; dense for a query that carries no text: a
pure vector query). Node similarities are ``ragcun.Hit.score``: ``P(relevant)`` from a relevance
calibrator when the store has one (``GaussianVectorStore(calibrator=embed_model)``,
:mod:`ragcun.scoring.calibrator`), else the distance law of :mod:`ragcun.scoring.distance_law` (dense) or the
fused score of :mod:`ragcun.store.fusion` (hybrid, sparse), in [0, 1] (z-score and callable fusions excepted: ``ragcun.Hit``); each returned node's metadata holds
``l2_distance``, ``bm25_score`` and ``retrieval_mode`` (hidden from the LLM and the embedder). Metadata filters and ``doc_ids`` become one
ragcun filter spec, which the core pushes down to indexes that filter themselves (Milvus).
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr, field_validator
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import VectorIndex, as_list, check_ids, check_k, check_kwargs
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.store.calibrated import CalibratorSource
from ragcun.store.doc_store import DocStore, Hit, Record, metadata_filter, scored_store
from ragcun.store.fusion import (
    DEFAULT_CANDIDATES,
    DEFAULT_RRF_K,
    check_fusion,
    check_rrf_k,
    fitted_fusion,
    resolve_weights,
    search_fusion,
)
from ragcun.store.modes import RetrievalMode
from ragcun.store.persistence import FRAMEWORK_KEY

DISTANCE_KEY = "l2_distance"
LEXICAL_KEY = "bm25_score"
MODE_KEY = "retrieval_mode"
_HIT_KEYS = (DISTANCE_KEY, LEXICAL_KEY, MODE_KEY)
NODE_CACHE_SIZE = 4096
"""How many parsed nodes a store keeps, so a repeated hit is copied instead of re-parsed from its metadata JSON."""
_CORE_MODES = {VectorStoreQueryMode.HYBRID: RetrievalMode.HYBRID, VectorStoreQueryMode.TEXT_SEARCH: RetrievalMode.SPARSE,
               VectorStoreQueryMode.SPARSE: RetrievalMode.SPARSE}
DEFAULT_NAMESPACE = "default"
_QUERY_KWARGS = ("mmr_threshold", "mmr_prefetch_k", "mmr_prefetch_factor", "fusion", "normalization", "rrf_k")
"""The keyword arguments :meth:`GaussianVectorStore.query` takes (a retriever's ``vector_store_kwargs``)."""
FRAMEWORK = "llama_index"
"""This adapter's name in the saves it writes (``extra["framework"]``)."""
NODE_CONTENT = "_node_content"
_OPS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in", FilterOperator.NIN: "$nin", FilterOperator.CONTAINS: "$contains",
    FilterOperator.ANY: "$any", FilterOperator.ALL: "$all", FilterOperator.TEXT_MATCH: "$text_match",
}


def to_filter_spec(filters: MetadataFilters) -> dict[str, Any]:
    """Translate LlamaIndex ``MetadataFilters`` into the core's filter dict (``ragcun.index.filters``)."""
    parts: list[dict[str, Any]] = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(to_filter_spec(f))
        elif f.operator == FilterOperator.IS_EMPTY:
            parts.append({"$or": [{f.key: {"$exists": False}}, {f.key: {"$in": [None, "", []]}}]})
        elif f.operator in _OPS:
            parts.append({f.key: {_OPS[f.operator]: f.value}})
        else:
            raise ValueError(f"unsupported filter operator {f.operator.value!r} on key {f.key!r}")
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.OR:
        return {"$or": parts}
    if condition == FilterCondition.NOT:
        return {"$not": {"$and": parts}}
    return {"$and": parts}


def _as_nodes(records: list[Record], extra: dict[str, Any]) -> list[Record]:
    """A save's records as this store holds them: a record without a node (a LangChain or ``DocStore`` save's)
    becomes a ``TextNode`` with the record's id, text and metadata, stored as :meth:`GaussianVectorStore.add` does."""
    if extra.get(FRAMEWORK_KEY) == FRAMEWORK:
        return records
    return [r if NODE_CONTENT in r.metadata else
            Record(r.id, r.text, node_to_metadata_dict(TextNode(id_=r.id, text=r.text, metadata=r.metadata),
                                                       remove_text=True))
            for r in records]


def _store_dir(persist_path: str | os.PathLike) -> Path:
    """The directory for a LlamaIndex persist path (``.../default__vector_store.json`` -> ``.../default__vector_store``)."""
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path


class GaussianVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store ranking by Euclidean distance on a ragcun ``VectorIndex`` (default ``L2Index``).

    ``GaussianVectorStore()`` takes its dimension from the first add; ``GaussianVectorStore(index=...)``
    wraps an existing index (``L2Index``, ``MilvusL2Index``, ...). ``calibrator``: a
    ``ragcun.scoring.calibrator.RelevanceCalibrator`` or the ``GaussianEmbedding`` that carries one;
    ``score_mode``: ``"relevance"`` (``P(relevant)``; the default with a calibrator) or a
    distance-law mode of ``ragcun.scoring.distance_law`` (``"auto"``, the default otherwise).
    ``retrieval_mode`` (``"hybrid"``, ``"dense"`` or ``"sparse"``, alias ``"lexical"``; a
    :class:`ragcun.RetrievalMode` or its string) is what ``DEFAULT`` queries do; ``fusion`` (``"convex"``,
    ``"rrf"`` or a callable ``fn(dense_scores, sparse_scores)``), ``normalization`` (convex fusion:
    ``"fixed-floor"``, ``"minmax"``, ``"zscore"``), ``alpha`` (dense weight) and ``rrf_k`` (RRF's constant)
    are how hybrid queries that set none fuse (:class:`ragcun.store.fusion.HybridFusion`); ``alpha=None`` /
    ``normalization=None`` (defaults) mean ``embed_model``'s fitted weight (a ``GaussianEmbedding`` whose
    model carries ``fusion_settings``; it is also the default ``calibrator``) if any, else 0.8 with fixed
    floors (:func:`ragcun.store.fusion.resolve_weights`); ``candidates`` how many candidates each side contributes
    (``hybrid_candidates`` is its deprecated name); ``lexical`` a ``ragcun.index.lexical.bm25.BM25Index``
    with another language's analyzer. These are the LangChain ``GaussianVectorStore``'s parameters, with
    the same names and defaults.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    retrieval_mode: RetrievalMode = RetrievalMode.HYBRID
    alpha: float | None = None
    normalization: str | None = None
    fusion: Any = "convex"
    rrf_k: int = DEFAULT_RRF_K
    candidates: int = DEFAULT_CANDIDATES
    _store: DocStore = PrivateAttr()
    _fitted: FusionSettings | None = PrivateAttr(default=None)
    _nodes: dict[str, tuple[Record, BaseNode]] = PrivateAttr(default_factory=dict)

    def __init__(self, index: VectorIndex | None = None, score_mode: str | None = None, *,
                 store: DocStore | None = None, lexical: BM25Index | None = None, calibrator: CalibratorSource = None,
                 embed_model: Any = None, **kwargs: Any) -> None:
        if "hybrid_candidates" in kwargs:
            warnings.warn("hybrid_candidates= is deprecated; use candidates=", DeprecationWarning, stacklevel=2)
            kwargs["candidates"] = kwargs.pop("hybrid_candidates")
        super().__init__(**kwargs)
        self._fitted = fitted_fusion(embed_model)
        resolve_weights(self.alpha, self.normalization, self._fitted)  # checks them now
        self._store = scored_store(store, index, lexical, score_mode, calibrator if calibrator is not None
                                   else getattr(embed_model, "relevance_calibrator", None))

    @field_validator("retrieval_mode", mode="before")
    @classmethod
    def _parse_mode(cls, value: Any) -> RetrievalMode:
        return RetrievalMode.parse(value)

    @field_validator("fusion", mode="before")
    @classmethod
    def _check_fusion(cls, value: Any) -> Any:
        return check_fusion(value)

    @field_validator("rrf_k", mode="before")
    @classmethod
    def _check_rrf_k(cls, value: Any) -> int:
        return check_rrf_k(value)

    @field_validator("candidates", mode="before")
    @classmethod
    def _check_candidates(cls, value: Any) -> int:
        return check_k(value, "candidates")

    @property
    def hybrid_candidates(self) -> int:
        """Deprecated name of ``candidates``."""
        warnings.warn("hybrid_candidates is deprecated; use candidates", DeprecationWarning, stacklevel=2)
        return self.candidates

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex serialisation name."""
        return "GaussianVectorStore"

    @property
    def client(self) -> VectorIndex:
        """The underlying ``VectorIndex``."""
        return self._store.index

    @property
    def store(self) -> DocStore:
        """The framework-free core store."""
        return self._store

    # -- writes -------------------------------------------------------------------------------
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes (each must carry an embedding); an existing node id is replaced."""
        check_kwargs("GaussianVectorStore.add", add_kwargs)
        records, vectors = [], []
        for node in as_list(nodes, "nodes"):
            if node.embedding is None:
                raise ValueError(f"node {node.node_id!r} has no embedding; embed it before adding")
            records.append(Record(node.node_id, node.get_content(metadata_mode=MetadataMode.NONE),
                                  node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)))
            vectors.append(node.embedding)
        if not records:
            return []
        return self._store.add(records, vectors)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of source document ``ref_doc_id``."""
        check_kwargs("GaussianVectorStore.delete", delete_kwargs)
        self._store.delete_where(filter={"ref_doc_id": {"$eq": ref_doc_id}})

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        """Delete the nodes matching ``node_ids`` and ``filters`` (both optional; neither deletes nothing), chosen
        and deleted under one write lock (``DocStore.delete_where``); a call that errors deletes nothing."""
        check_kwargs("GaussianVectorStore.delete_nodes", delete_kwargs)
        if node_ids is None and filters is None:
            return
        self._store.delete_where(self._ids_check(node_ids), self._filter_spec(filters, None))

    def clear(self) -> None:
        """Delete all nodes."""
        self._store.clear()

    # -- reads --------------------------------------------------------------------------------
    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The stored nodes matching ``node_ids`` and ``filters`` (all nodes if neither is given)."""
        return [metadata_dict_to_node(r.metadata, r.text) for r in self._select(node_ids, filters)]

    def _select(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> list[Record]:
        where = metadata_filter(self._filter_spec(filters, None))
        records = self._store.find() if node_ids is None else self._store.get(as_list(node_ids, "node_ids"))
        return records if where is None else [r for r in records if where(r)]

    @staticmethod
    def _ids_check(node_ids: list[str] | None) -> Callable[[Record], bool] | None:
        """A record predicate keeping ``node_ids`` (``None``: no restriction)."""
        if node_ids is None:
            return None
        wanted = set(check_ids(as_list(node_ids, "node_ids"), "node_ids"))
        return lambda rec: rec.id in wanted

    @staticmethod
    def _filter_spec(filters: MetadataFilters | None, doc_ids: list[str] | None) -> dict[str, Any] | None:
        """``filters`` and ``doc_ids`` as one ragcun filter spec (``None``: no restriction)."""
        parts: list[dict[str, Any]] = []
        if filters is not None and filters.filters:
            parts.append(to_filter_spec(filters))
        if doc_ids:  # LlamaIndex passes [] to mean "no restriction"
            parts.append({"ref_doc_id": {"$in": check_ids(doc_ids, "doc_ids")}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nodes ranked by the query's mode: L2 (``DEFAULT`` with ``retrieval_mode="dense"``), hybrid,
        BM25 (``TEXT_SEARCH`` / ``SPARSE``) or Euclidean MMR (``MMR``; ``mmr_threshold`` = lambda). ``kwargs`` (a retriever's
        ``vector_store_kwargs``): ``mmr_threshold``, ``mmr_prefetch_k``, ``mmr_prefetch_factor``, and ``fusion``,
        ``normalization``, ``rrf_k`` for this query; any other is a ``TypeError``."""
        check_kwargs("GaussianVectorStore.query", kwargs, _QUERY_KWARGS)
        spec = self._filter_spec(query.filters, query.doc_ids)
        nodes = set(check_ids(query.node_ids, "node_ids")) if query.node_ids else set()
        where = (lambda r: r.id in nodes) if nodes else None
        k = query.similarity_top_k
        if query.mode == VectorStoreQueryMode.MMR:
            lam = kwargs.get("mmr_threshold", query.mmr_threshold)
            fetch_k = kwargs.get("mmr_prefetch_k") or k * kwargs.get("mmr_prefetch_factor", 4)
            hits = self._store.mmr_search(self._vector(query), k, fetch_k, 0.5 if lam is None else lam, where, spec)
        elif query.mode == VectorStoreQueryMode.DEFAULT or query.mode in _CORE_MODES:
            mode, text = self._core_mode(query)
            if mode is RetrievalMode.HYBRID:
                k = query.hybrid_top_k or k
            elif mode is RetrievalMode.SPARSE:
                k = query.sparse_top_k or k
            vector = self._vector(query) if mode is not RetrievalMode.SPARSE or query.query_embedding is not None else None
            how = search_fusion(self, self._fitted, alpha=query.alpha, normalization=kwargs.get("normalization"),
                                fusion=kwargs.get("fusion"), rrf_k=kwargs.get("rrf_k"))
            hits = self._store.search(vector, k, where, spec, text=text, mode=mode,
                                      candidates=max(self.candidates, query.sparse_top_k or 0), **how)
        else:
            raise ValueError(f"GaussianVectorStore does not support query mode {query.mode.value!r}")
        return VectorStoreQueryResult(nodes=self._nodes_of(hits), similarities=[h.score for h in hits],
                                      ids=[h.record.id for h in hits])

    def _core_mode(self, query: VectorStoreQuery) -> tuple[RetrievalMode, str | None]:
        """The core's mode and query text for a LlamaIndex query (a ``DEFAULT`` query without text is a vector query)."""
        text = query.query_str if query.query_str and query.query_str.strip() else None
        if text is not None:
            return RetrievalMode.parse(_CORE_MODES.get(query.mode, self.retrieval_mode)), text
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(f"query mode {query.mode.value!r} needs query.query_str (the query text)")
        return RetrievalMode.DENSE, None

    @staticmethod
    def _vector(query: VectorStoreQuery) -> list[float]:
        if query.query_embedding is None:
            if not (query.query_str and query.query_str.strip()):
                raise ValueError("the query is empty: it has neither text (query_str) nor query_embedding")
            raise ValueError(f"query mode {query.mode.value!r} needs query.query_embedding (it searches by vector)")
        return query.query_embedding

    def _nodes_of(self, hits: list[Hit]) -> list[BaseNode]:
        """The stored nodes of ``hits`` (copies: callers may change them), each with its hit's distance, BM25 score
        and retrieval mode in hidden metadata. Parsed nodes are kept (up to :data:`NODE_CACHE_SIZE`), so a node
        found again is copied instead of parsed again from its metadata JSON."""
        cache, nodes = self._nodes, []
        for hit in hits:
            rec = hit.record
            cached = cache.get(rec.id)
            if cached is None or cached[0] is not rec:  # an upsert stores a new Record
                if len(cache) >= NODE_CACHE_SIZE:
                    cache.pop(next(iter(cache)), None)
                cached = cache[rec.id] = (rec, metadata_dict_to_node(rec.metadata, rec.text))
            node = cached[1]
            mode = hit.mode.value if hit.fallback is None else f"{hit.mode.value} ({hit.fallback})"
            nodes.append(node.model_copy(update={
                "metadata": {**node.metadata, DISTANCE_KEY: hit.distance, LEXICAL_KEY: hit.bm25_score, MODE_KEY: mode},
                "relationships": dict(node.relationships),
                "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *_HIT_KEYS],
                "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *_HIT_KEYS]}))
        return nodes

    # -- persistence --------------------------------------------------------------------------
    def calibrate(self, judgements: Sequence[tuple[str | Sequence[float], str, bool]],
                  embed_model: Any = None) -> RelevanceCalibrator:
        """Fit ``P(relevant)`` on judged ``(query vector or text, node id, relevant)`` hits at this store's
        distances; query texts need ``embed_model`` (a LlamaIndex embedding: ``get_query_embedding``). It scores
        later hits and is saved with the store."""
        embed = None if embed_model is None else (lambda texts: [embed_model.get_query_embedding(t) for t in texts])
        return self._store.fit_calibrator(judgements, embed)

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Atomically save to a directory (``StorageContext.persist`` passes ``<dir>/default__vector_store.json``;
        the store writes the directory ``<dir>/default__vector_store``). Local filesystem only."""
        if fs is not None and "file" not in getattr(fs, "protocol", ("file",)):
            raise ValueError("GaussianVectorStore persists to the local filesystem only")
        self._store.save(_store_dir(persist_path), extra={FRAMEWORK_KEY: FRAMEWORK})

    @classmethod
    def from_persist_path(cls, persist_path: str, index: VectorIndex | None = None,
                          **kwargs: Any) -> GaussianVectorStore:
        """Load what :meth:`persist` wrote at ``persist_path`` (verified; no pickle), or a LangChain
        ``GaussianVectorStore``'s or a ``DocStore``'s save, whose records become ``TextNode``s (same ids, texts,
        vectors and metadata); ``kwargs`` as for the constructor."""
        store, _ = DocStore.load(_store_dir(persist_path), index=index, convert=_as_nodes)
        return cls(store=store, **kwargs)

    @classmethod
    def from_persist_dir(cls, persist_dir: str, namespace: str = DEFAULT_NAMESPACE,
                         index: VectorIndex | None = None, **kwargs: Any) -> GaussianVectorStore:
        """Load the store that ``StorageContext.persist(persist_dir)`` saved under ``namespace``."""
        return cls.from_persist_path(str(Path(persist_dir) / f"{namespace}__vector_store"), index=index, **kwargs)

    # -- async --------------------------------------------------------------------------------
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Async :meth:`add`."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Async :meth:`delete`."""
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                            **delete_kwargs: Any) -> None:
        """Async :meth:`delete_nodes`."""
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Async :meth:`get_nodes`."""
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await asyncio.to_thread(self.clear)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Async :meth:`query`."""
        return await asyncio.to_thread(self.query, query, **kwargs)
