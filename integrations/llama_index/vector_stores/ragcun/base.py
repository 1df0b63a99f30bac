"""``GaussianVectorStore``: a LlamaIndex vector store over ``ragcun.doc_store.DocStore`` (any ``VectorIndex``).

Nodes are stored as text plus LlamaIndex's own metadata dict (``node_to_metadata_dict``); search,
filtering, MMR, scores and persistence are the core's. Node similarities are the relevance scores
of :mod:`ragcun.scores`; the Euclidean distance is in each returned node's metadata under
``l2_distance`` (hidden from the LLM and the embedder). Metadata filters and ``doc_ids`` become one
ragcun filter spec, which the core pushes down to indexes that filter themselves (Milvus).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from ragcun.doc_store import DocStore, Record, metadata_filter
from ragcun.scores import RelevanceScorer
from ragcun.vector_index import VectorIndex, check_ids

DISTANCE_KEY = "l2_distance"
DEFAULT_NAMESPACE = "default"
_OPS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in", FilterOperator.NIN: "$nin", FilterOperator.CONTAINS: "$contains",
    FilterOperator.ANY: "$any", FilterOperator.ALL: "$all", FilterOperator.TEXT_MATCH: "$text_match",
}


def to_filter_spec(filters: MetadataFilters) -> dict[str, Any]:
    """Translate LlamaIndex ``MetadataFilters`` into the core's filter dict (``ragcun.filters``)."""
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


def _store_dir(persist_path: str | os.PathLike) -> Path:
    """The directory for a LlamaIndex persist path (``.../default__vector_store.json`` -> ``.../default__vector_store``)."""
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path


class GaussianVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store ranking by Euclidean distance on a ragcun ``VectorIndex`` (default ``L2Index``).

    ``GaussianVectorStore()`` takes its dimension from the first add; ``GaussianVectorStore(index=...)``
    wraps an existing index (``L2Index``, ``MilvusL2Index``, ...). ``score_mode``: see ``ragcun.scores``.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    _store: DocStore = PrivateAttr()

    def __init__(self, index: Optional[VectorIndex] = None, score_mode: str = "auto", *,
                 store: Optional[DocStore] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store if store is not None else DocStore(index, RelevanceScorer(score_mode))

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
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Add nodes (each must carry an embedding); an existing node id is replaced."""
        records, vectors = [], []
        for node in nodes:
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
        self._store.delete([r.id for r in self._store.find(metadata_filter({"ref_doc_id": ref_doc_id}))])

    def delete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                     **delete_kwargs: Any) -> None:
        """Delete the nodes matching ``node_ids`` and ``filters`` (both optional; neither deletes nothing)."""
        if node_ids is None and filters is None:
            return
        self._store.delete([r.id for r in self._select(node_ids, filters)])

    def clear(self) -> None:
        """Delete all nodes."""
        self._store.clear()

    # -- reads --------------------------------------------------------------------------------
    def get_nodes(self, node_ids: Optional[List[str]] = None,
                  filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        """The stored nodes matching ``node_ids`` and ``filters`` (all nodes if neither is given)."""
        return [metadata_dict_to_node(r.metadata, r.text) for r in self._select(node_ids, filters)]

    def _select(self, node_ids: Optional[List[str]], filters: Optional[MetadataFilters]) -> List[Record]:
        where = metadata_filter(self._filter_spec(filters, None))
        records = self._store.find() if node_ids is None else self._store.get(node_ids)
        return records if where is None else [r for r in records if where(r)]

    @staticmethod
    def _filter_spec(filters: Optional[MetadataFilters], doc_ids: Optional[List[str]]) -> Optional[dict[str, Any]]:
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
        """Nearest nodes by Euclidean distance (``DEFAULT``) or Euclidean MMR (``MMR``; ``mmr_threshold`` = lambda)."""
        if query.query_embedding is None:
            raise ValueError("GaussianVectorStore needs query.query_embedding (it searches by vector)")
        spec = self._filter_spec(query.filters, query.doc_ids)
        nodes = set(check_ids(query.node_ids, "node_ids")) if query.node_ids else set()
        where = (lambda r: r.id in nodes) if nodes else None
        k = query.similarity_top_k
        if query.mode == VectorStoreQueryMode.MMR:
            lam = kwargs.get("mmr_threshold", query.mmr_threshold)
            fetch_k = kwargs.get("mmr_prefetch_k") or k * kwargs.get("mmr_prefetch_factor", 4)
            hits = self._store.mmr_search(query.query_embedding, k, fetch_k, 0.5 if lam is None else lam,
                                          where, spec)
        elif query.mode == VectorStoreQueryMode.DEFAULT:
            hits = self._store.search(query.query_embedding, k, where, spec)
        else:
            raise ValueError(f"GaussianVectorStore does not support query mode {query.mode.value!r}")
        results = []
        for hit in hits:
            node = metadata_dict_to_node(hit.record.metadata, hit.record.text)
            node.metadata[DISTANCE_KEY] = hit.distance
            node.excluded_llm_metadata_keys.append(DISTANCE_KEY)
            node.excluded_embed_metadata_keys.append(DISTANCE_KEY)
            results.append(node)
        return VectorStoreQueryResult(nodes=results, similarities=[h.score for h in hits],
                                      ids=[h.record.id for h in hits])

    # -- persistence --------------------------------------------------------------------------
    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Atomically save to a directory (``StorageContext.persist`` passes ``<dir>/default__vector_store.json``;
        the store writes the directory ``<dir>/default__vector_store``). Local filesystem only."""
        if fs is not None and "file" not in getattr(fs, "protocol", ("file",)):
            raise ValueError("GaussianVectorStore persists to the local filesystem only")
        self._store.save(_store_dir(persist_path))

    @classmethod
    def from_persist_path(cls, persist_path: str, index: Optional[VectorIndex] = None) -> "GaussianVectorStore":
        """Load what :meth:`persist` wrote at ``persist_path`` (verified; no pickle)."""
        store, _ = DocStore.load(_store_dir(persist_path), index=index)
        return cls(store=store)

    @classmethod
    def from_persist_dir(cls, persist_dir: str, namespace: str = DEFAULT_NAMESPACE,
                         index: Optional[VectorIndex] = None) -> "GaussianVectorStore":
        """Load the store that ``StorageContext.persist(persist_dir)`` saved under ``namespace``."""
        return cls.from_persist_path(str(Path(persist_dir) / f"{namespace}__vector_store"), index=index)

    # -- async --------------------------------------------------------------------------------
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        """Async :meth:`add`."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Async :meth:`delete`."""
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None,
                            **delete_kwargs: Any) -> None:
        """Async :meth:`delete_nodes`."""
        await asyncio.to_thread(self.delete_nodes, node_ids, filters)

    async def aget_nodes(self, node_ids: Optional[List[str]] = None,
                         filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        """Async :meth:`get_nodes`."""
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await asyncio.to_thread(self.clear)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Async :meth:`query`."""
        return await asyncio.to_thread(self.query, query, **kwargs)
