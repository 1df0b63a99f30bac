"""One query path in ``DocStore``: each side is asked once per query, filtered searches widen in one helper,
and every hit carries its scores under their own names."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest

import ragcun
from ragcun.index.faiss_l2 import L2Index
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.distance_law import DistanceLaw
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.modes import RetrievalMode

WORDS = [f"w{i}" for i in range(40)]


class CountingL2(L2Index):
    """A real ``L2Index`` that counts the calls a store makes, with the ``k`` of each search."""

    def __init__(self) -> None:
        super().__init__(factory="Flat")
        self.calls: Counter[str] = Counter()
        self.search_ks: list[int] = []

    def search(self, queries, k):  # type: ignore[no-untyped-def]
        self.calls["search"] += 1
        self.search_ks.append(k)
        return super().search(queries, k)

    def distances(self, query, ids):  # type: ignore[no-untyped-def]
        self.calls["distances"] += 1
        return super().distances(query, ids)

    def get_vectors(self, ids):  # type: ignore[no-untyped-def]
        self.calls["get_vectors"] += 1
        return super().get_vectors(ids)


class CountingBM25(BM25Index):
    """A real ``BM25Index`` that counts every query-side entry point."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def query(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["query"] += 1
        return super().query(*args, **kwargs)

    def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["search"] += 1
        return super().search(*args, **kwargs)

    def scores(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["scores"] += 1
        return super().scores(*args, **kwargs)

    @property
    def count(self) -> int:
        self.calls["count"] += 1
        return super().count


def counting_store(n: int = 300, seed: int = 0) -> tuple[DocStore, CountingL2, CountingBM25, np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, 16)).astype(np.float32)
    index, lexical = CountingL2(), CountingBM25()
    store = DocStore(index, lexical=lexical)
    store.add([Record(f"d{i}", " ".join(rng.choice(WORDS, 8)), {"g": i % 10}) for i in range(n)], vecs)
    store.search(vecs[0], 1)  # fits the distance law once (it reads stored vectors only when the store has grown)
    index.calls.clear()
    index.search_ks.clear()
    return store, index, lexical, vecs


def test_a_hybrid_query_asks_bm25_once_and_the_index_once_plus_one_distances_call():
    store, index, lexical, vecs = counting_store()
    hits = store.search(vecs[3] + 0.5, 10, text="w1 w2 w3", mode="hybrid", candidates=20)
    assert len(hits) == 10 and all(h.fused_score is not None and h.bm25_score is not None for h in hits)
    assert lexical.calls == Counter(query=1)
    assert index.calls["search"] == 1 and index.calls["distances"] <= 1 and index.calls["get_vectors"] == 0
    assert index.calls["distances"] == 1  # some BM25 candidates are not among the 20 nearest


def test_fallback_and_sparse_queries_need_no_extra_calls():
    store, index, lexical, vecs = counting_store()
    hits = store.search(vecs[3], 5, text="the of", mode="hybrid")  # no lexical terms: dense, from the same search
    assert hits[0].fallback == "no lexical terms in the query" and hits[0].record.id == "d3"
    assert lexical.calls == Counter(query=1) and index.calls == Counter(search=1)
    lexical.calls.clear()
    index.calls.clear()
    sparse = store.search(vecs[3], 5, text="w7", mode="sparse")
    assert sparse and all(h.mode is RetrievalMode.SPARSE and h.distance >= 0 for h in sparse)
    assert lexical.calls == Counter(query=1) and index.calls == Counter(distances=1)


def test_filtered_search_widens_fourfold_until_enough_records_pass():
    store, index, _, vecs = counting_store(n=300)
    q = vecs[0]
    far = [h.record.id for h in store.search(q, 300)][-3:]  # the three farthest records
    index.search_ks.clear()
    hits = store.search(q, 3, where=lambda r: r.id in far)
    assert {h.record.id for h in hits} == set(far)
    assert index.search_ks == [32, 128, 300]  # max(4k, 32), then x4, capped at the store's size
    index.search_ks.clear()
    common = store.search(q, 3, filter={"g": {"$in": [0, 1, 2, 3, 4]}})
    assert len(common) == 3 and index.search_ks == [32]
    index.search_ks.clear()
    assert len(store.search(q, 3)) == 3 and index.search_ks == [3]  # unfiltered: exactly k


def test_hybrid_widening_uses_the_same_helper_for_the_dense_side():
    store, index, lexical, vecs = counting_store(n=300)
    hits = store.search(vecs[0], 5, text="w1", mode="hybrid", candidates=10, filter={"g": 3})
    assert hits and all(h.record.metadata["g"] == 3 for h in hits)
    assert index.search_ks[0] == 40 and lexical.calls == Counter(query=1)


def test_distances_match_search_distances():
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    index = L2Index()
    index.add([f"v{i}" for i in range(50)], vecs)
    ids, dist = index.search(vecs[:1] + 0.1, 10)
    np.testing.assert_allclose(index.distances(vecs[0] + 0.1, ids[0]), dist[0], rtol=1e-6)
    assert index.distances(vecs[0], []).shape == (0,)
    with pytest.raises(KeyError, match="nope"):
        index.distances(vecs[0], ["v1", "nope"])
    with pytest.raises(ValueError, match="one query vector"):
        index.distances(vecs[:2], ["v1"])


def test_bm25_query_answers_everything_in_one_call():
    index = BM25Index()
    index.add(["a", "b", "c", "e"], ["cat sat on a mat", "dog and cat", "fish swim", ""])
    found = index.query("cat", 5, extra_ids=["c", "b", "e", "zzz"])
    assert found.ids == ["a", "b"] or found.ids == ["b", "a"]
    np.testing.assert_array_equal(found.scores, index.scores("cat", found.ids))
    np.testing.assert_array_equal(found.extra_scores, index.scores("cat", ["c", "b", "e", "zzz"]))
    assert found.has_terms and found.indexed == 3
    none = index.query("the of", 5)
    assert none.ids == [] and not none.has_terms
    assert index.query("cat", 5, allowed=lambda i: i != "a").ids == ["b"]


def test_hit_score_is_relevance_then_fused_then_law():
    rng = np.random.default_rng(4)
    vecs = rng.normal(size=(40, 8)).astype(np.float32)
    recs = [Record(f"d{i}", "cat" if i % 2 else "dog") for i in range(40)]
    plain = DocStore()
    plain.add(recs, vecs)
    dense = plain.search(vecs[0], 3)
    assert all(h.relevance is None and h.fused_score is None and h.score == h.law_score for h in dense)
    law = plain.distance_score()
    assert isinstance(law, DistanceLaw) and dense[0].law_score == pytest.approx(float(law(dense[0].distance)))
    hybrid = plain.search(vecs[0], 3, text="cat", mode="hybrid")
    assert all(h.score == h.fused_score and h.law_score is not None for h in hybrid)
    calibrated = DocStore(calibrator=RelevanceCalibrator(intercept=2.0, slope=-0.5))
    calibrated.add(recs, vecs)
    for mode in ("dense", "hybrid", "sparse"):
        hits = calibrated.search(vecs[0], 3, text="cat", mode=mode)
        assert all(h.relevance is not None and h.score == h.relevance for h in hits)
    textonly = calibrated.search(None, 3, text="cat", mode="sparse")  # no distances: no relevance, no law
    assert all(h.relevance is None and h.law_score is None and h.score == h.fused_score for h in textonly)


def test_retrieval_mode_vocabulary():
    assert RetrievalMode.parse("lexical") is RetrievalMode.SPARSE and RetrievalMode("sparse") == "sparse"
    assert ragcun.RetrievalMode is RetrievalMode and "RetrievalMode" in ragcun.__all__
    with pytest.raises(ValueError, match="retrieval mode must be one of 'dense', 'sparse', 'hybrid'"):
        RetrievalMode.parse("bm25")


def test_renamed_names_keep_deprecated_aliases():
    from ragcun.scoring import distance_law
    from ragcun.store import fusion

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ragcun.RelevanceScore is ragcun.DistanceLaw and ragcun.RelevanceScorer is ragcun.DistanceLawScorer
        assert ragcun.chi2_relevance is ragcun.chi2_survival and distance_law.RelevanceScore is DistanceLaw
        assert fusion.check_mode("lexical") is RetrievalMode.SPARSE
        assert fusion.RETRIEVAL_MODES == ("dense", "sparse", "hybrid")
        store = DocStore()
        store.add([Record("a", "cat")], np.ones((1, 4), dtype=np.float32))
        assert store.search(None, 1, text="cat", mode="sparse")[0].lexical_score > 0
    assert len(caught) >= 7 and all(issubclass(w.category, DeprecationWarning) for w in caught)
    assert {"DistanceLaw", "DistanceLawScorer", "chi2_survival", "Hit"} <= set(ragcun.__all__)
    assert not {"RelevanceScore", "RelevanceScorer", "chi2_relevance"} & set(ragcun.__all__)
    with pytest.raises(AttributeError):
        ragcun.NoSuchName  # noqa: B018
