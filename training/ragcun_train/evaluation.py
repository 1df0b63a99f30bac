"""Evaluation: L2 retrieval metrics on a BEIR split, and the sentence-transformers evaluators used during full fine-tuning."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator, SentenceEvaluator

from ragcun import isotropy_report
from ragcun.index.exact import nearest
from ragcun_eval.beir import BeirDataset
from ragcun_eval.metrics import evaluate

TOP_K = 100


def retrieval_metrics(query_emb: np.ndarray | torch.Tensor, doc_emb: np.ndarray | torch.Tensor, data: BeirDataset) -> dict[str, float]:
    """BEIR metrics (``ndcg@10``, ``recall@100``, …) of exact L2 ranking; rows follow ``data.queries`` and ``data.doc_ids``."""
    ranked, _ = nearest(query_emb, doc_emb, TOP_K)
    run = {qid: [data.doc_ids[j] for j in row] for qid, row in zip(data.queries, ranked)}
    return evaluate(run, data.qrels)


def measure(iso_emb: np.ndarray, query_emb: np.ndarray | None, doc_emb: np.ndarray | None, ev: BeirDataset | None) -> dict[str, Any]:
    """Before/after record: ``ndcg@10`` and all metrics (with ``ev``), the isotropy report of ``iso_emb``, and ``_emb`` itself."""
    out: dict[str, Any] = {}
    if ev is not None:
        metrics = retrieval_metrics(query_emb, doc_emb, ev)
        out |= {"ndcg@10": metrics["ndcg@10"], "metrics": metrics}
    report = isotropy_report(iso_emb).to_dict()
    return out | {"isotropy": report, "_emb": np.asarray(iso_emb)}


def neg_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Negative Euclidean distance: a score function where higher means closer."""
    return -torch.cdist(a.float(), b.float())


def l2_retrieval_evaluator(data: BeirDataset, name: str = "dev", batch_size: int = 64) -> InformationRetrievalEvaluator:
    """sentence-transformers' ``InformationRetrievalEvaluator`` scoring by negative L2 distance."""
    return InformationRetrievalEvaluator(
        queries=dict(data.queries),
        corpus=dict(zip(data.doc_ids, data.doc_texts)),
        relevant_docs={q: {d for d, s in rel.items() if s > 0} for q, rel in data.qrels.items()},
        score_functions={"neg_l2": neg_l2},
        name=name,
        batch_size=batch_size,
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10, 100],
        write_csv=False,
    )


class IsotropyEvaluator(SentenceEvaluator):
    """Isotropy of a model's embeddings of fixed texts (``ragcun.isotropy_report``) at each evaluation.

    Reports every numeric field of the report prefixed with ``name``; the primary metric is the
    SIGReg statistic (lower is better, about 1 for N(0, I)).

    Args:
        texts: the texts to embed (a corpus sample; a few hundred to a few thousand).
        name: metric prefix.
        batch_size: encoding batch size.
    """

    def __init__(self, texts: list[str], name: str = "isotropy", batch_size: int = 64) -> None:
        super().__init__()
        if len(texts) < 2:
            raise ValueError("IsotropyEvaluator needs at least 2 texts")
        self.texts = list(texts)
        self.name = name
        self.batch_size = batch_size
        self.greater_is_better = False
        self.primary_metric = "sigreg"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, Any]:
        emb = model.encode(self.texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        report = isotropy_report(emb).to_dict()
        metrics = {k: float(v) for k, v in report.items() if isinstance(v, (int, float))}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
