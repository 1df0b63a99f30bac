"""The trained model's hybrid dense weight, fitted on the labelled queries held back from training.

After training, the corpus goes into a :class:`ragcun.store.doc_store.DocStore` with the trained model's outputs,
each held-back query searches it in hybrid mode for every dense weight of :data:`ALPHAS`, and the weight with the
best mean nDCG@10 is kept as the model's :class:`ragcun.scoring.fusion_settings.FusionSettings` (saved in its
folder; a store given the model uses it unless the user sets ``alpha``). Ties go to the weight nearest the store's
default. Searching through ``DocStore`` scores the fusion exactly as a store will.
"""

from __future__ import annotations

import logging
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


def hybrid_ndcg(store: DocStore, queries: np.ndarray, held: HeldOut, alpha: float) -> float:
    """Mean nDCG@10 of the ``held`` queries (outputs ``queries``, row ids as strings) in hybrid search at ``alpha``."""
    scores = []
    for vector, text, relevant in zip(queries, held.queries, held.relevant):
        ranked = [hit.record.id for hit in store.search(vector, K, text=text, mode="hybrid", alpha=alpha,
                                                            normalization=NORMALIZATION)]
        scores.append(ndcg_at_k(ranked, {str(i): 1 for i in relevant}, K))
    return float(np.mean(scores))


def held_out_fusion(queries: np.ndarray, corpus: np.ndarray, corpus_texts: list[str], held: HeldOut,
                    source: str) -> FusionSettings:
    """The :data:`ALPHAS` weight with the best hybrid nDCG@10 of the held-back ``queries`` (outputs, in
    :attr:`HeldOut.queries` order) over ``corpus`` (outputs) and ``corpus_texts``, with every weight's score."""
    store = DocStore()
    store.add([Record(str(i), text) for i, text in enumerate(corpus_texts)], corpus)
    curve = {alpha: hybrid_ndcg(store, queries, held, alpha) for alpha in ALPHAS}
    best = max(ALPHAS, key=lambda a: (round(curve[a], 10), -abs(a - DEFAULT_ALPHA)))
    log.info("hybrid dense weight %.2f: nDCG@10 %.4f on %d held-back queries (%.2f: %.4f)", best, curve[best],
             len(held.queries), DEFAULT_ALPHA, curve.get(DEFAULT_ALPHA, float("nan")))
    return FusionSettings(best, NORMALIZATION, {
        "source": Path(source).name, "held_out_queries": len(held.queries), "corpus_documents": len(corpus_texts),
        "metric": f"ndcg@{K}", "default_alpha": DEFAULT_ALPHA, "ndcg@10_by_alpha": {f"{a:.2f}": round(v, 4) for a, v in curve.items()}})
