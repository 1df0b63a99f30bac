"""Hybrid hits' P(relevant): the BM25 share each hybrid hit carries, the calibrator's hybrid terms the store scores
it with, and :func:`ragcun.store.calibrate.add_hybrid_terms` fitting them on labelled queries' hybrid hits."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ragcun import GaussianRetriever
from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.calibrator import HybridTerms, RelevanceCalibrator
from ragcun.store.calibrate import add_hybrid_terms, hybrid_pairs
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Record

DIM = 8
WORDS = "river forest granite copper violin harbour lantern meadow orchid pepper quartz saddle".split()


def _store(calibrator: RelevanceCalibrator | None = None, seed: int = 0) -> tuple[DocStore, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 5)) + f" doc{i}" for i in range(80)]
    docs = rng.normal(size=(80, DIM)).astype(np.float32)
    store = DocStore(L2Index(DIM), calibrator=calibrator)
    store.add([Record(f"d{i}", t) for i, t in enumerate(texts)], docs)
    return store, docs, texts


def test_hybrid_hits_carry_their_bm25_share_and_are_scored_with_the_hybrid_terms() -> None:
    cal = RelevanceCalibrator(1.0, -0.2, hybrid=HybridTerms(-2.0, -0.1, 3.0))
    store, docs, _ = _store(cal)
    hits = store.search(docs[3], 10, text="granite copper doc3", mode="hybrid")
    shares = np.array([h.bm25_share for h in hits])
    assert np.all((shares >= 0) & (shares <= 1)) and shares.max() == 1.0  # the best BM25 candidate is among them
    np.testing.assert_allclose(shares, [h.bm25_score / max(h.bm25_score for h in hits) for h in hits])
    np.testing.assert_allclose([h.relevance for h in hits], cal([h.distance for h in hits], shares))
    assert [h.relevance for h in hits] != pytest.approx(cal([h.distance for h in hits]).tolist())
    dense = store.search(docs[3], 5)
    assert all(h.bm25_share is None for h in dense)
    np.testing.assert_allclose([h.relevance for h in dense], cal([h.distance for h in dense]))  # the distance terms
    sparse = store.search(docs[3], 5, text="granite copper doc3", mode="sparse")
    np.testing.assert_allclose([h.relevance for h in sparse], cal([h.distance for h in sparse]))  # hybrid hits only


def test_add_hybrid_terms_fits_on_labelled_queries_hybrid_hits() -> None:
    store, docs, texts = _store()
    rng = np.random.default_rng(1)
    queries = docs[:40] + rng.normal(scale=0.8, size=(40, DIM)).astype(np.float32)
    words = [" ".join(texts[i].split()[:2]) + f" doc{i}" for i in range(40)]  # a query names its document
    relevant = [{f"d{i}"} for i in range(40)]
    d, s, y = hybrid_pairs(store, queries, words, relevant)
    assert len(d) == len(s) == len(y) == 400 and y.sum() >= 35
    base = RelevanceCalibrator(1.0, -0.2, fitted_on="dense")
    cal = add_hybrid_terms(base, store, queries, words, relevant)
    assert cal.hybrid is not None and cal.hybrid.bm25 > 0 and cal.hybrid.n_pairs == 400
    assert cal.hybrid == base.fit_hybrid(d, s, y).hybrid and (cal.intercept, cal.fitted_on) == (1.0, "dense")


def test_add_hybrid_terms_keeps_the_distance_only_calibrator_and_says_why(caplog) -> None:
    store, docs, texts = _store()
    base = RelevanceCalibrator(1.0, -0.2)
    with caplog.at_level(logging.WARNING, logger="ragcun.store.calibrate"):
        cal = add_hybrid_terms(base, store, docs[:5], texts[:5], [set()] * 5)  # nothing relevant
    assert cal is base and "distance-only P(relevant)" in caplog.text and "both" in caplog.text


def test_the_bundled_calibrator_scores_hybrid_hits_with_their_bm25_share(bundled_encoder) -> None:
    cal = bundled_encoder.relevance_calibrator
    assert cal is not None and cal.hybrid is not None and cal.hybrid.slope < 0 < cal.hybrid.bm25
    assert "scifact train" in cal.fitted_on and cal.hybrid.n_pairs == cal.n_pairs  # the same 809 queries' top 10s
    retriever = GaussianRetriever(encoder=bundled_encoder)
    retriever.add_documents(["The Moon's gravity raises the tides.", "Tides follow the Moon.", "Hamlet is a tragedy."])
    hits = retriever.store.search(bundled_encoder.encode_query(["what raises the tides"], convert_to_numpy=True)[0], 3,
                                  text="what raises the tides", mode="hybrid")
    np.testing.assert_allclose([h.relevance for h in hits],
                               cal([h.distance for h in hits], [h.bm25_share for h in hits]), rtol=1e-6)
