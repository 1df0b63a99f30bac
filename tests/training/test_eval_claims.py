"""ragcun_eval.claims: the statistics and verdict rules on small synthetic cases with known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from ragcun_eval.beir import BeirDataset
from ragcun_eval.claims import (
    ClaimResult,
    auc,
    cohens_d,
    expected_calibration_error,
    judge_separation,
    measure_claims,
    norm_confidence,
)
from ragcun_eval.models import ModelSpec
from ragcun_eval.retrieval import run_model


def test_auc_and_cohens_d_hand_computed() -> None:
    # pairs: 2>1, 2=2 (½), 3>1, 3>2 → 3.5 / 4
    assert auc(np.array([2.0, 3.0]), np.array([1.0, 2.0]))[0] == pytest.approx(0.875)
    area, p = auc(np.arange(10.0, 20.0), np.arange(10.0))
    assert area == 1.0 and p < 0.001
    assert math.isnan(auc(np.array([]), np.array([1.0]))[0])
    # means 2 and 1, both variances 2 → pooled SD √2
    assert cohens_d(np.array([1.0, 3.0]), np.array([0.0, 2.0])) == pytest.approx(1 / math.sqrt(2))


def test_expected_calibration_error_hand_computed() -> None:
    scores = np.array([0.05, 0.15, 0.95, 0.95])
    labels = np.array([False, False, True, False])
    # bins: |0.05 − 0|, |0.15 − 0|, and two pairs with |0.95 − 0.5|
    assert expected_calibration_error(scores, labels) == pytest.approx((0.05 + 0.15 + 2 * 0.45) / 4)
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([False, True])) == pytest.approx(0.0)


def test_norm_confidence() -> None:
    norms = np.arange(20.0)
    out = norm_confidence(norms, norms / 20, norms >= 10)
    assert out["norm_spearman"] == pytest.approx(1.0) and out["norm_spearman_p"] < 1e-6
    assert out["norm_auroc"] == 1.0 and out["norm_auroc_p"] < 0.001
    flat = norm_confidence(np.ones(20), norms / 20, norms >= 10)
    assert math.isnan(flat["norm_spearman"]) and flat["norm_auroc"] == 0.5


def _result(model: str, area: float, d: float, dataset: str = "toy") -> ClaimResult:
    return ClaimResult(dataset, model, "l2", 0.0, area, d, 0.0, 0.5, "chi2 law", 0.0, 1.0, 0.5, 1.0, 1, 1, 1)


def test_separation_verdict_is_relative_to_the_first_model() -> None:
    results = [_result("base", 0.8, 1.0), _result("better", 0.9, 1.5), _result("mixed", 0.9, 0.5),
               _result("other-set", 0.1, 0.1, dataset="other")]
    judge_separation(results)
    assert [r.verdicts["separation"] for r in results] == ["reference", "held", "did not hold", "reference"]


class _FixedCache:
    """Stands in for EmbeddingCache: returns preset raw outputs."""

    def __init__(self, docs: np.ndarray, queries: np.ndarray) -> None:
        self.arrays = {"document": docs, "query": queries}

    def embed(self, spec, texts, role):  # noqa: ANN001, ANN201
        return self.arrays[role]

    def model(self, spec):  # noqa: ANN001, ANN201
        return SimpleNamespace(model=None)  # a model carrying no fitted fusion


def test_measure_claims_on_a_planted_case() -> None:
    """Each query sits near its relevant doc; queries with larger norms sit nearer (so they retrieve better)."""
    rng = np.random.default_rng(0)
    n_docs, n_q, dim = 200, 40, 16
    docs = rng.standard_normal((n_docs, dim))
    scale = np.linspace(0.5, 3.0, n_q)
    noise = rng.standard_normal((n_q, dim)) * (2.0 / scale)[:, None]
    queries = (docs[:n_q] + noise) * 1.0
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True) * (5 + scale)[:, None]
    data = BeirDataset("toy", [f"d{i}" for i in range(n_docs)], ["t"] * n_docs,
                       {f"q{i}": "q" for i in range(n_q)}, {f"q{i}": {f"d{i}": 1} for i in range(n_q)})
    spec = ModelSpec("planted", "planted", "l2", True)
    run = run_model(data, spec, _FixedCache(docs.astype(np.float32), queries.astype(np.float32)))
    result = measure_claims(run, data)
    assert result.n_relevant_pairs == n_q and result.n_irrelevant_pairs == n_q * 100
    assert result.auc > 0.9 and result.cohens_d > 1.0 and result.gap > 0
    assert result.norm_spearman > 0.3 and result.verdicts["norm"] == "held"
    assert 0 <= result.ece <= 1 and result.verdicts["calibration"] in ("held", "did not hold")
    assert sum(b["count"] for b in result.reliability) == result.n_calibration_pairs == n_q * 10
    assert result.calibration_score == "chi2 law"


def test_claims_score_calibration_with_the_models_calibrator() -> None:
    """A model's relevance calibrator, fitted on one split, is what the calibration claim measures on another."""
    from ragcun_eval.calibrate import calibration_pairs, fit_calibrator

    rng = np.random.default_rng(1)
    n_docs, n_q, dim = 300, 120, 16
    docs = rng.standard_normal((n_docs, dim))
    queries = docs[:n_q] + rng.standard_normal((n_q, dim)) * rng.uniform(0.3, 1.5, (n_q, 1))
    ids = [f"d{i}" for i in range(n_docs)]

    def split(rows: range) -> tuple[BeirDataset, object]:
        data = BeirDataset("toy", ids, ["t"] * n_docs, {f"q{i}": "q" for i in rows}, {f"q{i}": {f"d{i}": 1} for i in rows})
        cache = _FixedCache(docs.astype(np.float32), queries[list(rows)].astype(np.float32))
        return data, run_model(data, ModelSpec("planted", "planted", "l2", True), cache)

    (train, train_run), (test, test_run) = split(range(0, 60)), split(range(60, 120))
    calibrator = fit_calibrator(train_run, train, "train")
    assert calibrator.slope < 0 and calibrator.n_pairs == 600 and "toy train" in calibrator.fitted_on
    result = measure_claims(test_run, test, calibrator=calibrator)
    distances, labels = calibration_pairs(test_run, test)
    assert result.calibration_score == "calibrator"
    assert result.ece == pytest.approx(expected_calibration_error(calibrator(distances), labels))
    assert result.ece < measure_claims(test_run, test).ece  # calibrated beats the distance law here
    cosine = run_model(test, ModelSpec("planted", "planted", "cosine", True), _FixedCache(docs, queries[60:]))
    assert measure_claims(cosine, test, calibrator=calibrator).calibration_score == "chi2 law"  # not its space
    with pytest.raises(ValueError, match="own L2 space"):
        fit_calibrator(cosine, test, "test")


def test_claims_score_hybrid_hits_as_the_store_does() -> None:
    """A hybrid run's calibration claim scores each top hit by its distance and BM25 share, exactly the
    ``Hit.relevance`` a DocStore with that calibrator gives it."""
    from ragcun.index.faiss_l2 import L2Index
    from ragcun.store.doc_store import DocStore, Record
    from ragcun_eval.calibrate import calibration_pairs, fit_calibrator

    rng = np.random.default_rng(2)
    n_docs, n_q, dim = 300, 120, 16
    docs = rng.standard_normal((n_docs, dim)).astype(np.float32)
    queries = (docs[:n_q] + rng.standard_normal((n_q, dim)) * 1.5).astype(np.float32)
    ids = [f"d{i}" for i in range(n_docs)]
    doc_texts = [f"topic{i} common words here" for i in range(n_docs)]
    query_texts = [f"topic{i} topic{rng.integers(n_docs)}" if i % 2 else f"topic{rng.integers(n_docs)} common"
                   for i in range(n_q)]  # half name their relevant document, half only a random one

    def split(rows: range, geometry: str) -> tuple[BeirDataset, object]:
        data = BeirDataset("toy", ids, doc_texts, {f"q{i}": query_texts[i] for i in rows},
                           {f"q{i}": {f"d{i}": 1} for i in rows})
        return data, run_model(data, ModelSpec("planted", "planted", geometry, True),
                               _FixedCache(docs, queries[list(rows)]))

    train, train_run = split(range(0, 60), "l2")
    calibrator = fit_calibrator(train_run, train, "train")
    assert calibrator.hybrid is not None and calibrator.hybrid.bm25 > 0
    test, hybrid_run = split(range(60, 120), "hybrid")
    result = measure_claims(hybrid_run, test, calibrator=calibrator)
    assert result.calibration_score == "calibrator (hybrid)"

    store = DocStore(L2Index(dim), calibrator=calibrator)
    store.add([Record(d, t) for d, t in zip(ids, doc_texts)], docs)
    relevance, labels = [], []
    for row, q in enumerate(test.queries):
        hits = store.search(queries[60 + row], 10, text=test.queries[q], mode="hybrid", candidates=n_docs)
        relevance += [h.relevance for h in hits]
        labels += [h.record.id in test.qrels[q] for h in hits]
    assert result.ece == pytest.approx(expected_calibration_error(np.array(relevance), np.array(labels)))
    distances, _ = calibration_pairs(hybrid_run, test)
    assert result.ece != pytest.approx(expected_calibration_error(calibrator(distances), np.array(labels)))
    lexical = run_model(test, ModelSpec("planted", "planted", "lexical", True), _FixedCache(docs, queries[60:]))
    assert measure_claims(lexical, test, calibrator=calibrator).calibration_score == "calibrator"  # BM25 hits: distance
