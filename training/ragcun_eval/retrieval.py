"""Retrieve with one model and geometry on a BEIR split and score the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragcun.index.exact import nearest
from ragcun.index.faiss_l2 import L2Index
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import DEFAULT_CANDIDATES, fitted_fusion, resolve_weights
from ragcun_eval.beir import BeirDataset
from ragcun_eval.geometry import Space, apply_geometry
from ragcun_eval.metrics import mean_metrics, per_query
from ragcun_eval.models import Embedder, ModelSpec

DEPTH = 100  # documents retrieved per query (enough for Recall@100 and MAP@100)


@dataclass
class ModelRun:
    """One model and geometry on one dataset: the vector space, the ranking and the per-query metrics.

    ``query_ids`` index the rows of ``space.queries``; ``ranked[q]`` / ``distances[q]`` are the top
    :data:`DEPTH` doc ids and Euclidean distances in that space, nearest first. ``bm25_shares[q]`` (hybrid runs
    only, else ``None``) are those hits' :attr:`ragcun.store.hits.Hit.bm25_share`, NaN for a hit the store ranked
    densely (a query without lexical terms).
    """

    dataset: str
    spec: ModelSpec
    space: Space
    query_ids: list[str]
    ranked: dict[str, list[str]]
    distances: dict[str, np.ndarray]
    per_query: dict[str, dict[str, float]]
    bm25_shares: dict[str, np.ndarray] | None = None

    def row(self) -> dict:
        """The results row: dataset, model, geometry and the mean of each metric."""
        return {"dataset": self.dataset, "model": self.spec.name, "geometry": self.spec.geometry,
                **mean_metrics(self.per_query)}


def run_model(data: BeirDataset, spec: ModelSpec, embedder: Embedder, depth: int = DEPTH,
              alpha: float | None = None) -> ModelRun:
    """Encode (through ``embedder``, whose base outputs are cached), apply ``spec``'s dense geometry and rank:
    exactly by L2 (:func:`ragcun.index.exact.nearest`), or for ``hybrid`` / ``lexical`` through ``ragcun.DocStore`` (BM25 on the texts,
    fused with dense weight ``alpha``; ``None``: the model's fitted weight if it carries one, else the stores'
    default, as a store given the model does). Then score the run.

    As in BEIR, a document whose id equals the query id is never returned.
    """
    query_ids = list(data.queries)
    query_texts = [data.queries[q] for q in query_ids]
    docs_raw = embedder.embed(spec, data.doc_texts, "document")
    queries_raw = embedder.embed(spec, query_texts, "query")
    space = apply_geometry(spec.dense_geometry, docs_raw, queries_raw)
    fetch = min(depth + 1, len(data.doc_ids))
    if spec.geometry in ("hybrid", "lexical"):
        weight, normalization = resolve_weights(alpha, None, fitted_fusion(embedder.model(spec).model))
        store = DocStore(L2Index(space.docs.shape[1]))
        store.add([Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)], space.docs)
        ids, dist = [], np.full((len(query_ids), fetch), np.inf)
        share = np.full((len(query_ids), fetch), np.nan)
        for row, (vector, text) in enumerate(zip(space.queries, query_texts)):
            hits = store.search(vector, fetch, text=text, mode=spec.geometry, alpha=weight,
                                normalization=normalization,
                                candidates=max(DEFAULT_CANDIDATES, fetch))
            ids.append([h.record.id for h in hits] + [None] * (fetch - len(hits)))
            dist[row, :len(hits)] = [h.distance for h in hits]
            share[row, :len(hits)] = [np.nan if h.bm25_share is None else h.bm25_share for h in hits]
    else:
        rows, squared = nearest(space.queries, space.docs, fetch)
        ids, dist = [[data.doc_ids[j] for j in row] for row in rows.tolist()], np.sqrt(squared)
    ranked, distances, shares = {}, {}, {}
    for row, q in enumerate(query_ids):
        keep = [j for j, d in enumerate(ids[row]) if d is not None and d != q][:depth]
        ranked[q] = [ids[row][j] for j in keep]
        distances[q] = dist[row, keep].astype(np.float64)
        if spec.geometry == "hybrid":
            shares[q] = share[row, keep]
    return ModelRun(data.name, spec, space, query_ids, ranked, distances, per_query(ranked, data.qrels),
                    shares if spec.geometry == "hybrid" else None)
