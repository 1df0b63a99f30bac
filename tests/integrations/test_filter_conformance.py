"""LangChain's own FAISS store is the spec: the same texts, vectors and filters give the same ids, in order.

Both stores hold the same 16 fixed vectors (``add_embeddings``) and are searched by the same query
vectors; ragcun runs dense on an exact ``L2Index("Flat")``. Each filter spec of the battery must keep
the same documents in the same order in both; where FAISS refuses a spec, ragcun refuses it clearly
too; the few places ragcun reads a spec differently are listed and asserted below.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ragcun import GaussianVectorStore
from ragcun import L2Index

DIM, N = 8, 16
_MISSING = object()
TAGS = ["a", "b", "c", _MISSING, "a", "b", "c", None, "a", "b", "c", "a", None, _MISSING, "b", "c"]
CODES = [1, "1", 2.0, 1, "1", 2.0, 1, "1", 2.0, 1, "1", 2.0, 1, "1", 2.0, True]
LISTS = [["x", "y"], "x", _MISSING, ["x"], "y", _MISSING, "x", ["x", "y"], _MISSING, "y", "x", _MISSING,
         ["y"], "x", _MISSING, "x"]


def _metadata(i: int) -> dict[str, Any]:
    md: dict[str, Any] = {"page": i % 5, "score": i * 0.5, "code": CODES[i], "tag": TAGS[i], "lst": LISTS[i]}
    if i % 3:
        md["flag"] = i % 2 == 0
    if i % 4 == 0:
        md["opt"] = i // 4  # 0, 1, 2, 3 on docs 0, 4, 8, 12; missing elsewhere
    return {k: v for k, v in md.items() if v is not _MISSING}


METAS = [_metadata(i) for i in range(N)]
TEXTS = [f"document {i}" for i in range(N)]
IDS = [f"d{i}" for i in range(N)]
VECTORS = np.random.default_rng(7).standard_normal((N, DIM)).astype(np.float32)
QUERIES = np.random.default_rng(8).standard_normal((3, DIM)).astype(np.float32)

BATTERY: list[Any] = [
    {},
    {"page": 1},
    {"page": [1, 2]},                                   # a list value is membership
    {"tag": ["a", "c"]},
    {"page": {"$neq": 1}},
    {"page": {"$eq": 2}},
    {"page": {"$gt": 2}},
    {"page": {"$gte": 2, "$lt": 4}},
    {"page": {"$lte": 0}},
    {"page": {"$in": [0, 4]}},
    {"page": {"$nin": [0, 4]}},
    {"page": list(range(2, 14))},                       # FAISS turns a list longer than 10 into a set
    {"page": {}},                                       # no operators: no constraint
    {"tag": None},                                      # a missing key reads as None
    {"tag": {"$eq": None}},
    {"tag": {"$neq": None}},
    {"tag": {"$in": ["a", None]}},
    {"tag": {"$nin": ["a", None]}},
    {"tag": {"$in": []}},
    {"tag": "zzz"},
    {"code": 1},                                        # 1 == 1.0 == True, != "1"
    {"code": "1"},
    {"code": 2},
    {"code": [1, "1"]},
    {"flag": True},
    {"flag": False},
    {"flag": None},
    {"lst": ["x", "y"]},                                # membership: lst == "x" or lst == "y"
    {"lst": {"$eq": ["x", "y"]}},                       # equality with a list value
    {"lst": {"$in": [["x"], ["y"]]}},
    {"score": {"$gt": 2.5}},
    {"score": 1},
    {"opt": {"$neq": 3}},
    {"opt": {"$nin": [3]}},
    {"opt": None},
    {"page": 1, "tag": "b"},
    {"$and": [{"page": {"$gte": 1}}, {"tag": "a"}]},
    {"$or": [{"page": 0}, {"tag": "c"}]},
    {"$not": {"page": 1}},
    {"$not": {"tag": ["a", "b"]}},
    {"$not": {"$or": [{"page": 0}, {"opt": None}]}},
    {"$or": [{"$and": [{"page": [1, 2, 3]}, {"$not": {"tag": "b"}}]}, {"code": "1"}]},
    {"$and": [{"$or": [{"flag": True}, {"flag": None}]}, {"$not": {"lst": "x"}}]},
    {"$and": []},
    {"$or": []},
    {"$and": [{"page": [0, 1, 2]}, {"$or": [{"code": {"$in": ["1", 2]}}, {"opt": {"$in": [0, 1, 2]}}]}]},
]


@pytest.fixture(scope="module")
def stores() -> tuple[FAISS, GaussianVectorStore]:
    embedding = DeterministicFakeEmbedding(size=DIM)
    pairs = list(zip(TEXTS, VECTORS.tolist()))
    faiss_store = FAISS.from_embeddings(pairs, embedding, metadatas=METAS, ids=IDS)
    ragcun_store = GaussianVectorStore(embedding, index=L2Index(factory="Flat"), retrieval_mode="dense")
    ragcun_store.add_embeddings(pairs, METAS, ids=IDS)
    return faiss_store, ragcun_store


def _ids(docs: list[Any]) -> list[str]:
    return [d.id for d in docs]


def test_the_battery_is_large_and_keeps_different_sets() -> None:
    assert len(BATTERY) >= 30
    from ragcun.index.filters import compile_filter
    kept = {tuple(i for i, md in enumerate(METAS) if compile_filter(spec)(md)) for spec in BATTERY}
    assert len(kept) >= 25  # the specs are not one answer over and over


@pytest.mark.parametrize("spec", BATTERY, ids=[str(s) for s in BATTERY])
@pytest.mark.parametrize("k", [4, N])
def test_same_ids_in_the_same_order_as_langchain_faiss(stores, spec: Any, k: int) -> None:
    faiss_store, ragcun_store = stores
    for q in QUERIES.tolist():
        want = faiss_store.similarity_search_with_score_by_vector(q, k=k, filter=spec)
        got = ragcun_store.similarity_search_with_score_by_vector(q, k=k, filter=spec)
        assert _ids([d for d, _ in got]) == _ids([d for d, _ in want])
        # FAISS reports squared L2 distances, ragcun the distance itself
        np.testing.assert_allclose([s for _, s in got], [math.sqrt(s) for _, s in want], rtol=1e-4, atol=1e-5)
        assert _ids(ragcun_store.similarity_search_by_vector(q, k=k, filter=spec)) == \
            _ids(faiss_store.similarity_search_by_vector(q, k=k, filter=spec))


@pytest.mark.parametrize("spec", BATTERY[:12], ids=[str(s) for s in BATTERY[:12]])
def test_text_queries_in_dense_mode_agree_too(stores, spec: Any) -> None:
    faiss_store, ragcun_store = stores
    assert _ids(ragcun_store.similarity_search("document 3", k=5, filter=spec)) == \
        _ids(faiss_store.similarity_search("document 3", k=5, filter=spec))


def test_a_callable_filter_gets_the_metadata_dict_as_in_faiss(stores) -> None:
    faiss_store, ragcun_store = stores
    check = lambda md: md.get("page") in (1, 3) and md.get("tag") != "b"  # noqa: E731
    q = QUERIES[0].tolist()
    want = _ids(faiss_store.similarity_search_by_vector(q, k=N, filter=check))
    assert want and _ids(ragcun_store.similarity_search_by_vector(q, k=N, filter=check)) == want
    with pytest.raises(TypeError, match="called with a document's metadata dict"):
        ragcun_store.similarity_search_by_vector(q, k=4, filter=lambda doc: doc.metadata["page"] == 1)


@pytest.mark.parametrize(("spec", "error"), [
    ({"page": {"$regex": "1"}}, r"unknown filter operator\(s\) \['\$regex'\] for key 'page'"),
    ({"$xor": [{"page": 1}]}, r"unknown filter combinator '\$xor'"),
    ({"page": {"$gt": 1, "x": 2}}, "mixes operators and plain keys"),
    ({"$and": {"page": 1}}, r"\$and needs a list value"),
    ({"$not": [{"page": 1}]}, "filter must be a dict, a callable or None; got list"),
    ("page == 1", "filter must be a dict, a callable or None; got str"),
])
def test_where_faiss_refuses_a_spec_ragcun_refuses_it_clearly(stores, spec: Any, error: str) -> None:
    faiss_store, ragcun_store = stores
    q = QUERIES[0].tolist()
    with pytest.raises(Exception):  # noqa: B017 - FAISS raises ValueError or AttributeError, depending on the spec
        faiss_store.similarity_search_by_vector(q, k=4, filter=spec)
    with pytest.raises((ValueError, TypeError), match=error):
        ragcun_store.similarity_search_by_vector(q, k=4, filter=spec)


def test_deliberate_differences_from_faiss(stores) -> None:
    """Where FAISS crashes on the data or drops part of a spec, ragcun keeps its documented reading."""
    faiss_store, ragcun_store = stores
    q = QUERIES[0].tolist()
    # ordering values of incomparable types (None > "a", "1" > 0): FAISS raises TypeError, ragcun does not match
    for spec, keep in [({"tag": {"$gt": "a"}}, lambda md: isinstance(md.get("tag"), str) and md["tag"] > "a"),
                       ({"code": {"$gt": 1}}, lambda md: not isinstance(md["code"], str) and md["code"] > 1)]:
        with pytest.raises(TypeError):
            faiss_store.similarity_search_by_vector(q, k=N, filter=spec)
        got = _ids(ragcun_store.similarity_search_by_vector(q, k=N, filter=spec))
        assert got and got == _ids(faiss_store.similarity_search_by_vector(q, k=N, filter=keep))
    # FAISS reads only the $and of {"$and": [...], "page": 1}; ragcun ANDs every key, as at any other level
    spec = {"$and": [{"tag": "a"}], "page": 1}
    assert _ids(ragcun_store.similarity_search_by_vector(q, k=N, filter=spec)) == \
        _ids(faiss_store.similarity_search_by_vector(q, k=N, filter={"tag": "a", "page": 1}))
    # a dict without operators is a value to compare equal (FAISS: "unsupported operator"); $ne is $neq
    assert ragcun_store.similarity_search_by_vector(q, k=N, filter={"page": {"a": 1}}) == []
    assert _ids(ragcun_store.similarity_search_by_vector(q, k=N, filter={"page": {"$ne": 1}})) == \
        _ids(faiss_store.similarity_search_by_vector(q, k=N, filter={"page": {"$neq": 1}}))
    # $in needs a list (FAISS runs `value in "abc"`, a substring test that raises on non-strings)
    with pytest.raises(ValueError, match=r"\$in needs a list value"):
        ragcun_store.similarity_search_by_vector(q, k=N, filter={"tag": {"$in": "abc"}})


def test_fetch_k_where_faiss_finds_enough_matches_and_where_it_does_not(stores) -> None:
    """FAISS filters its ``fetch_k`` nearest; ragcun widens until ``k`` pass: the same documents when FAISS's
    ``fetch_k`` hold ``k`` matches, and FAISS's as a prefix of ragcun's when they do not."""
    faiss_store, ragcun_store = stores
    q = QUERIES[1].tolist()
    spec = {"page": [0, 1]}
    for fetch_k in (N, 20):
        want = _ids(faiss_store.similarity_search_by_vector(q, k=4, filter=spec, fetch_k=fetch_k))
        assert _ids(ragcun_store.similarity_search_by_vector(q, k=4, filter=spec, fetch_k=fetch_k)) == want
    short = _ids(faiss_store.similarity_search_by_vector(q, k=4, filter=spec, fetch_k=3))
    full = _ids(ragcun_store.similarity_search_by_vector(q, k=4, filter=spec, fetch_k=3))
    assert len(short) < 4 == len(full) and full[:len(short)] == short


@pytest.mark.parametrize("quantile", [0.0, 0.25, 0.6, 1.0])
def test_score_threshold_keeps_the_same_documents_as_faiss(stores, quantile: float) -> None:
    """FAISS keeps squared distances ``<= score_threshold``; ragcun keeps distances ``<= score_threshold``."""
    faiss_store, ragcun_store = stores
    q = QUERIES[2].tolist()
    dists = np.sort(np.linalg.norm(VECTORS - QUERIES[2], axis=1))
    limit = float(np.quantile(dists, quantile)) + 1e-4
    for spec in (None, {"tag": ["a", "b"]}):
        want = faiss_store.similarity_search_with_score_by_vector(q, k=10, filter=spec, score_threshold=limit ** 2)
        got = ragcun_store.similarity_search_with_score_by_vector(q, k=10, filter=spec, score_threshold=limit)
        assert _ids([d for d, _ in got]) == _ids([d for d, _ in want])
        assert all(s <= limit for _, s in got)
        assert _ids(ragcun_store.similarity_search_by_vector(q, k=10, filter=spec, score_threshold=limit)) == \
            _ids(faiss_store.similarity_search_by_vector(q, k=10, filter=spec, score_threshold=limit ** 2))
