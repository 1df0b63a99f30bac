"""The trained model's hybrid dense weight, fitted on the labelled queries held back from training.

After training, the corpus goes into a :class:`ragcun.store.doc_store.DocStore` with the trained model's outputs,
each held-back query searches it in hybrid mode for every dense weight of :data:`ALPHAS`, and
:func:`choose_alpha` keeps a weight as the model's :class:`ragcun.scoring.fusion_settings.FusionSettings` (saved in
its folder; a store given the model uses it unless the user sets ``alpha``): the one-standard-error rule (Breiman
et al., "Classification and Regression Trees", 1984), the weight nearest the store's default among those whose
mean nDCG@10 trails the best by at most one standard error of the per-query difference. With a tenth of the
queries held back, the best weight alone fits their noise: ``benchmarks/fusion_fit.py`` measures both rules on
queries not fitted on. Searching through ``DocStore`` scores the fusion exactly as a store will.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.store.doc_store import DocStore
from ragcun.store.fusion import DEFAULT_NORMALIZATION, DEFAULT_WEIGHTS
from ragcun.store.hits import Record
from ragcun_eval.metrics import ndcg_at_k
from ragcun_train.calibration import HeldOut

log = logging.getLogger(__name__)

NORMALIZATION = DEFAULT_NORMALIZATION
"""The stores' default normalisation of the fused scores (:mod:`ragcun.store.fusion`), which a fitted weight belongs to."""
DEFAULT_ALPHA = DEFAULT_WEIGHTS[NORMALIZATION]
"""The stores' default dense weight for :data:`NORMALIZATION`: ties go to the weight nearest it."""
ALPHAS = tuple(round(0.05 * i, 2) for i in range(21))
"""The dense weights tried: 0.0, 0.05, ..., 1.0."""
K = 10


def hybrid_ndcg(store: DocStore, queries: np.ndarray, held: HeldOut, alpha: float) -> np.ndarray:
    """Each ``held`` query's nDCG@10 (outputs ``queries``, row ids as strings) in hybrid search at ``alpha``."""
    scores = []
    for vector, text, relevant in zip(queries, held.queries, held.relevant):
        ranked = [hit.record.id for hit in store.search(vector, K, text=text, mode="hybrid", alpha=alpha,
                                                            normalization=NORMALIZATION)]
        scores.append(ndcg_at_k(ranked, {str(i): 1 for i in relevant}, K))
    return np.array(scores)


def choose_alpha(per_query: np.ndarray, alphas: Sequence[float] = ALPHAS, default: float = DEFAULT_ALPHA) -> float:
    """The one-standard-error choice from ``per_query`` scores (queries × ``alphas``): among the weights whose mean
    trails the best mean by at most the standard error of the per-query difference to the best, the one nearest
    ``default`` (then the better). One query alone never moves the weight from ``default``."""
    scores = np.asarray(per_query, dtype=np.float64)
    means = scores.mean(axis=0)
    best = int(np.argmax(means))
    gaps = scores[:, [best]] - scores
    n = len(scores)
    se = gaps.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(alphas), np.inf)
    near = np.flatnonzero(means[best] - means <= se + 1e-12).tolist()
    return float(alphas[min(near, key=lambda j: (abs(alphas[j] - default), -means[j]))])


def held_out_store(corpus: np.ndarray, corpus_texts: list[str]) -> DocStore:
    """The training corpus (outputs ``corpus``, ``corpus_texts``; row numbers as ids) in a store, for the held-back
    queries to search."""
    store = DocStore()
    store.add([Record(str(i), text) for i, text in enumerate(corpus_texts)], corpus)
    return store


def held_out_fusion(store: DocStore, queries: np.ndarray, held: HeldOut, source: str) -> FusionSettings:
    """The :func:`choose_alpha` weight for the held-back ``queries`` (outputs, in :attr:`HeldOut.queries` order)
    over the :func:`held_out_store`, with every weight's mean nDCG@10."""
    per_query = np.stack([hybrid_ndcg(store, queries, held, alpha) for alpha in ALPHAS], axis=1)
    curve = dict(zip(ALPHAS, per_query.mean(axis=0).tolist()))
    chosen, best = choose_alpha(per_query), max(ALPHAS, key=curve.__getitem__)
    log.info("hybrid dense weight %.2f: nDCG@10 %.4f on %d held-back queries (best %.2f: %.4f; default %.2f: %.4f)",
             chosen, curve[chosen], len(held.queries), best, curve[best], DEFAULT_ALPHA, curve[DEFAULT_ALPHA])
    return FusionSettings(chosen, NORMALIZATION, {
        "source": Path(source).name, "held_out_queries": len(held.queries), "corpus_documents": len(store),
        "metric": f"ndcg@{K}", "rule": "one standard error", "best_alpha": best, "default_alpha": DEFAULT_ALPHA,
        "ndcg@10_by_alpha": {f"{a:.2f}": round(v, 4) for a, v in curve.items()}})
