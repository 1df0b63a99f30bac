"""``DocStore`` on its own: records and vectors in step through add, upsert, delete, search and save/load.

Pure core: random vectors in a real ``L2Index``, no model and no framework. Searches are checked against
brute-force Euclidean distances computed here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.io.saves import SaveFormatError
from ragcun.store.doc_store import DocStore, Record

DIM = 8


def _store(n: int = 20, seed: int = 0) -> tuple[DocStore, np.ndarray]:
    """A store of ``n`` records ``d0 .. d{n-1}`` with metadata ``{"i": i, "even": i % 2 == 0}``."""
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    store = DocStore()
    store.add([Record(f"d{i}", f"text {i}", {"i": i, "even": i % 2 == 0}) for i in range(n)], vectors)
    return store, vectors


def _nearest(vectors: np.ndarray, query: np.ndarray, allowed: list[int] | None = None) -> list[str]:
    """Brute-force ids by Euclidean distance (ties are absent with random vectors)."""
    rows = range(len(vectors)) if allowed is None else allowed
    return [f"d{i}" for i in sorted(rows, key=lambda i: float(np.linalg.norm(vectors[i] - query)))]


# -- add, upsert, get, find ----------------------------------------------------------------------

def test_add_returns_the_ids_and_len_contains_ids_follow():
    store, _ = _store(5)
    assert len(store) == 5 and store.index.count == 5
    assert "d3" in store and "d9" not in store and 3 not in store
    assert store.ids == ["d0", "d1", "d2", "d3", "d4"]
    assert store.add([Record("x", "t")], np.zeros((1, DIM))) == ["x"]


def test_add_copies_the_metadata_dict():
    store = DocStore()
    meta = {"tag": "a"}
    store.add([Record("x", "t", meta)], np.zeros((1, DIM)))
    meta["tag"] = "changed"
    assert store.get(["x"])[0].metadata == {"tag": "a"}


def test_upsert_replaces_text_metadata_and_vector_and_moves_the_id_last():
    store, vectors = _store(4)
    far = np.full((1, DIM), 50.0, dtype=np.float32)
    store.add([Record("d1", "new text", {"new": True})], far)
    assert len(store) == 4 and store.index.count == 4
    rec = store.get(["d1"])[0]
    assert (rec.text, rec.metadata) == ("new text", {"new": True})
    assert store.ids == ["d0", "d2", "d3", "d1"]
    assert np.allclose(store.index.get_vectors(["d1"]), far)
    assert store.search(far[0], 1)[0].record.id == "d1"
    assert store.search(vectors[1], 4)[-1].record.id == "d1"  # its old vector is gone


@pytest.mark.parametrize("records, vectors, message", [
    ([Record("a", "t"), Record("b", "t")], np.zeros((1, DIM)), "2 records for 1 vectors"),
    ([Record("a", 3)], np.zeros((1, DIM)), "text must be a string"),  # type: ignore[arg-type]
    ([Record("a", "t", {"k": (1, 2)})], np.zeros((1, DIM)), "record 'a'"),
    ([Record("a", "t", {1: "x"})], np.zeros((1, DIM)), "keys must be strings"),
    ([Record("a", "t")], np.full((1, DIM), np.nan), "finite"),
])
def test_bad_adds_are_refused_and_store_nothing(records, vectors, message):
    store, _ = _store(3)
    with pytest.raises(ValueError, match=message):
        store.add(records, vectors)
    assert store.ids == ["d0", "d1", "d2"] and store.index.count == 3


def test_a_vector_of_another_dimension_is_refused():
    store, _ = _store(3)
    with pytest.raises(ValueError):
        store.add([Record("x", "t")], np.zeros((1, DIM + 1)))
    assert len(store) == 3


def test_empty_adds_are_a_no_op():
    store, _ = _store(3)
    assert store.add([], []) == [] and store.add([], np.zeros((0, DIM))) == []
    assert len(store) == 3


def test_get_keeps_the_order_asked_and_skips_unknown_ids():
    store, _ = _store(5)
    assert [r.id for r in store.get(["d4", "nope", "d0"])] == ["d4", "d0"]
    assert store.get([]) == []


def test_find_returns_insertion_order_and_applies_where():
    store, _ = _store(6)
    assert [r.id for r in store.find()] == store.ids
    assert [r.id for r in store.find(lambda r: r.metadata["even"])] == ["d0", "d2", "d4"]


@pytest.mark.parametrize("method", ["get", "delete"])
def test_a_bare_string_of_ids_is_refused(method):
    store, _ = _store(3)
    store.add([Record("d", "t")], np.zeros((1, DIM)))
    with pytest.raises(TypeError, match="single string"):
        getattr(store, method)("d0")
    assert len(store) == 4


# -- delete and clear ----------------------------------------------------------------------------

def test_delete_counts_existing_ids_once_and_skips_unknown_ones():
    store, vectors = _store(5)
    assert store.delete(["d1", "d1", "nope", "d3"]) == 2
    assert store.ids == ["d0", "d2", "d4"] and store.index.count == 3
    assert [h.record.id for h in store.search(vectors[1], 5)] == _nearest(vectors, vectors[1], [0, 2, 4])


def test_delete_with_missing_ok_false_deletes_nothing_when_an_id_is_unknown():
    store, _ = _store(3)
    with pytest.raises(KeyError, match="nope"):
        store.delete(["d0", "nope"], missing_ok=False)
    assert len(store) == 3 and store.index.count == 3
    assert store.delete(["d0"], missing_ok=False) == 1


def test_delete_where_deletes_what_find_finds_and_an_error_deletes_nothing():
    store, vectors = _store(8)
    assert store.delete_where(filter={"i": [1, 2, 3]}, where=lambda r: r.id != "d2") == ["d1", "d3"]
    assert store.ids == ["d0", "d2", "d4", "d5", "d6", "d7"] and store.index.count == 6
    assert store.delete_where(filter={"even": False}) == ["d5", "d7"]
    assert [h.record.id for h in store.search(vectors[5], 4)] == _nearest(vectors, vectors[5], [0, 2, 4, 6])
    assert "d5" not in {h.record.id for h in store.search(None, 8, text="text 5", mode="sparse")}  # BM25 in step
    with pytest.raises(ValueError, match="unknown filter operator"):
        store.delete_where(filter={"i": {"$near": 1}})
    with pytest.raises(KeyError, match="boom"):
        store.delete_where(filter=lambda md: md["i"] < 3 or md["boom"])  # d0, d2 pass before d4 raises
    assert store.ids == ["d0", "d2", "d4", "d6"] and store.index.count == 4
    assert store.delete_where() == ["d0", "d2", "d4", "d6"] and len(store) == 0


def test_clear_empties_records_index_and_lexical_side():
    store, vectors = _store(5)
    store.clear()
    assert len(store) == 0 and store.ids == [] and store.index.count == 0
    assert store.search(vectors[0], 3) == []
    store.add([Record("x", "text again")], vectors[:1])
    assert [h.record.id for h in store.search(None, 3, text="again", mode="lexical")] == ["x"]


# -- search ---------------------------------------------------------------------------------------

def test_search_matches_brute_force_distances_and_ranks():
    store, vectors = _store(30)
    query = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
    hits = store.search(query, 7)
    assert [h.record.id for h in hits] == _nearest(vectors, query)[:7]
    for h in hits:
        i = int(h.record.id[1:])
        assert h.distance == pytest.approx(float(np.linalg.norm(vectors[i] - query)), rel=1e-5)
        assert 0.0 <= h.score <= 1.0 and h.mode == "dense" and h.bm25_score is None
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_returns_at_most_the_stored_count():
    store, vectors = _store(4)
    assert len(store.search(vectors[0], 10)) == 4
    assert DocStore().search(np.zeros(DIM), 3) == []


def test_where_and_filter_restrict_the_search_and_combine():
    store, vectors = _store(40)
    query = vectors[0] + 0.01
    by_where = store.search(query, 5, where=lambda r: not r.metadata["even"])
    assert [h.record.id for h in by_where] == _nearest(vectors, query, list(range(1, 40, 2)))[:5]
    by_filter = store.search(query, 5, filter={"even": False})
    assert [h.record.id for h in by_filter] == [h.record.id for h in by_where]
    both = store.search(query, 40, where=lambda r: r.metadata["i"] >= 30, filter={"i": {"$lt": 35}})
    assert sorted(h.record.id for h in both) == [f"d{i}" for i in range(30, 35)]
    assert store.search(query, 5, filter={"i": {"$gt": 1000}}) == []


def test_a_filter_on_a_rare_value_still_fills_k():
    store, vectors = _store(200)
    rare = [3, 97, 150, 199]
    hits = store.search(vectors[0], 4, where=lambda r: r.metadata["i"] in rare)
    assert sorted(h.record.id for h in hits) == sorted(f"d{i}" for i in rare)


@pytest.mark.parametrize("query, k, message", [
    (np.zeros(DIM + 1), 3, "query"),
    (np.zeros((2, DIM)), 3, "one query vector"),
    (np.zeros(DIM), 0, "k must be a positive int"),
    (np.zeros(DIM), 2.5, "k must be a positive int"),
    (None, 3, "needs a query vector"),
])
def test_bad_searches_are_clear_errors(query, k, message):
    store, _ = _store(5)
    with pytest.raises(ValueError, match=message):
        store.search(query, k)


def test_lexical_and_hybrid_search_use_the_texts():
    store = DocStore()
    vectors = np.random.default_rng(2).normal(size=(3, DIM)).astype(np.float32)
    store.add([Record("a", "red apples"), Record("b", "green pears"), Record("c", "yellow bananas")], vectors)
    lexical = store.search(None, 3, text="pears", mode="lexical")
    assert [h.record.id for h in lexical] == ["b"] and lexical[0].bm25_score > 0
    hybrid = store.search(vectors[0], 3, text="pears", mode="hybrid", alpha=0.0)
    assert hybrid[0].record.id == "b" and hybrid[0].mode == "hybrid"


def test_mmr_search_starts_from_the_nearest_and_returns_distinct_records():
    store, vectors = _store(30)
    hits = store.mmr_search(vectors[5], 6, fetch_k=15)
    ids = [h.record.id for h in hits]
    assert ids[0] == "d5" and len(set(ids)) == 6
    assert set(ids) <= set(_nearest(vectors, vectors[5])[:15])


# -- save and load --------------------------------------------------------------------------------

def test_save_load_round_trip_keeps_records_order_vectors_results_and_extra(tmp_path):
    store, vectors = _store(25)
    store.add([Record("d3", "replaced", {"nested": {"list": [1, 2.5, None, "x"]}})], vectors[3:4] + 1)
    store.delete(["d7"])
    store.save(tmp_path / "s", extra={"model": "m"})
    loaded, extra = DocStore.load(tmp_path / "s")
    assert extra == {"model": "m"}
    assert loaded.ids == store.ids
    assert [(r.id, r.text, r.metadata) for r in loaded.find()] == [(r.id, r.text, r.metadata) for r in store.find()]
    assert np.array_equal(loaded.index.get_vectors(loaded.ids), store.index.get_vectors(store.ids))
    query = np.random.default_rng(3).normal(size=DIM).astype(np.float32)
    for kwargs in ({}, {"filter": {"even": True}}, {"text": "text", "mode": "hybrid"}):
        before = [(h.record.id, h.distance, h.score) for h in store.search(query, 10, **kwargs)]
        after = [(h.record.id, h.distance, h.score) for h in loaded.search(query, 10, **kwargs)]
        assert after == before, kwargs


def test_a_save_is_a_snapshot(tmp_path):
    store, vectors = _store(5)
    store.save(tmp_path / "s")
    store.delete(["d0"])
    store.add([Record("new", "t")], vectors[:1])
    loaded, _ = DocStore.load(tmp_path / "s")
    assert loaded.ids == ["d0", "d1", "d2", "d3", "d4"]


def test_an_empty_store_round_trips(tmp_path):
    DocStore().save(tmp_path / "s")
    loaded, extra = DocStore.load(tmp_path / "s")
    assert len(loaded) == 0 and extra == {} and loaded.search(np.zeros(DIM), 3) == []


def test_load_with_an_index_holding_other_ids_is_refused(tmp_path):
    store, vectors = _store(3)
    store.save(tmp_path / "s")
    other = L2Index(DIM)
    other.add(["x0", "x1", "x2"], vectors)
    with pytest.raises(SaveFormatError, match="missing from the index"):
        DocStore.load(tmp_path / "s", index=other)


def test_a_store_needs_a_vector_index():
    with pytest.raises(TypeError, match="VectorIndex"):
        DocStore(index=object())  # type: ignore[arg-type]
