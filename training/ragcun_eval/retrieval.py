"""Retrieve with one model and geometry on a BEIR split and score the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragcun.l2_index import L2Index
from ragcun_eval.beir import BeirDataset
from ragcun_eval.geometry import Space, apply_geometry
from ragcun_eval.metrics import mean_metrics, per_query
from ragcun_eval.models import Embedder, ModelSpec

DEPTH = 100  # documents retrieved per query (enough for Recall@100 and MAP@100)


@dataclass
class ModelRun:
    """One model and geometry on one dataset: the vector space, the ranking and the per-query metrics.

    ``query_ids`` index the rows of ``space.queries``; ``ranked[q]`` / ``distances[q]`` are the top
    :data:`DEPTH` doc ids and Euclidean distances in that space, nearest first.
    """

    dataset: str
    spec: ModelSpec
    space: Space
    query_ids: list[str]
    ranked: dict[str, list[str]]
    distances: dict[str, np.ndarray]
    per_query: dict[str, dict[str, float]]

    def row(self) -> dict:
        """The results row: dataset, model, geometry and the mean of each metric."""
        return {"dataset": self.dataset, "model": self.spec.name, "geometry": self.spec.geometry,
                **mean_metrics(self.per_query)}


def run_model(data: BeirDataset, spec: ModelSpec, embedder: Embedder, depth: int = DEPTH) -> ModelRun:
    """Encode (through ``embedder``, whose base outputs are cached), apply ``spec.geometry``, search exactly by L2 and score the run.

    As in BEIR, a document whose id equals the query id is never returned.
    """
    query_ids = list(data.queries)
    docs_raw = embedder.embed(spec, data.doc_texts, "document")
    queries_raw = embedder.embed(spec, [data.queries[q] for q in query_ids], "query")
    space = apply_geometry(spec.geometry, docs_raw, queries_raw)
    index = L2Index(space.docs.shape[1])
    index.add(data.doc_ids, space.docs)
    ids, dist = index.search(space.queries, min(depth + 1, len(data.doc_ids)))
    ranked, distances = {}, {}
    for row, q in enumerate(query_ids):
        keep = [j for j, d in enumerate(ids[row]) if d is not None and d != q][:depth]
        ranked[q] = [ids[row][j] for j in keep]
        distances[q] = dist[row, keep].astype(np.float64)
    return ModelRun(data.name, spec, space, query_ids, ranked, distances, per_query(ranked, data.qrels))
