"""Ranking metrics with the BEIR / trec_eval definitions.

For one query, ``ranked`` is the list of retrieved doc ids, best first, and ``qrels`` maps judged
doc ids to graded relevance (``> 0`` means relevant; unjudged docs count as irrelevant):

- ``ndcg_at_k``: DCG@k = Σ_{i ≤ k} rel_i / log2(i + 1) (linear gains, as trec_eval's ``ndcg_cut``),
  divided by the ideal DCG@k of all judged documents sorted by relevance;
- ``recall_at_k``: |relevant ∩ top k| / |relevant|;
- ``mrr_at_k``: 1 / rank of the first relevant doc within the top k, else 0;
- ``average_precision_at_k``: Σ over relevant docs at rank r ≤ k of precision@r, divided by |relevant|
  (trec_eval's ``map_cut``).

:func:`evaluate` applies them to a run ``{query id: ranked ids}`` and averages over the queries of
``qrels`` (a query missing from the run scores 0), returning the keys of :data:`METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
Run = Mapping[str, Sequence[str]]


def _relevant(qrels: Mapping[str, int]) -> set[str]:
    return {d for d, s in qrels.items() if s > 0}


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains and log2(rank + 1) discount; 0 when nothing is relevant."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((s for s in qrels.values() if s > 0), reverse=True)[:k]
    idcg = sum(s / math.log2(i + 2) for i, s in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k; 0 when nothing is relevant."""
    rel = _relevant(qrels)
    return len(rel.intersection(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    rel = _relevant(qrels)
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if d in rel), 0.0)


def average_precision_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Average precision over the top k: Σ precision@r at relevant ranks r ≤ k, over |relevant|."""
    rel = _relevant(qrels)
    if not rel:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if d in rel:
            hits += 1
            total += hits / (i + 1)
    return total / len(rel)


def per_query(run: Run, qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, float]]:
    """``{query id: {metric: value}}`` for every query of ``qrels`` (the keys of :data:`METRICS`)."""
    out = {}
    for q, judged in qrels.items():
        ranked = list(run.get(q, ()))
        out[q] = {
            "ndcg@10": ndcg_at_k(ranked, judged, 10),
            "recall@10": recall_at_k(ranked, judged, 10),
            "recall@100": recall_at_k(ranked, judged, 100),
            "mrr@10": mrr_at_k(ranked, judged, 10),
            "map@100": average_precision_at_k(ranked, judged, 100),
        }
    return out


def mean_metrics(per_query_values: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric of :data:`METRICS` over the queries of a :func:`per_query` result."""
    if not per_query_values:
        raise ValueError("no judged queries to evaluate")
    rows = per_query_values.values()
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}


def evaluate(run: Run, qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean of each metric of :data:`METRICS` over the queries of ``qrels``."""
    return mean_metrics(per_query(run, qrels))
