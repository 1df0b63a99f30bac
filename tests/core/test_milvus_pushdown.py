"""Metadata filters pushed down into Milvus Lite: the index filters itself and results equal ``L2Index``'s.

A ``SpyIndex`` is a real ``MilvusL2Index`` that records the filter of each search and the ids Milvus
returned, so the tests see what ran inside Milvus; the ``L2Index``-backed stores filter in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason='Milvus tests need the extra: pip install "ragcun[milvus]"')
pytest.importorskip("milvus_lite", reason='Milvus tests need Milvus Lite: pip install "ragcun[milvus]"')

from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

import langchain_ragcun  # noqa: E402
import llama_index.vector_stores.ragcun as li_store  # noqa: E402
from ragcun.index.faiss_l2 import L2Index  # noqa: E402
from ragcun.index.filters import compile_filter  # noqa: E402
from ragcun.index.milvus.index import MilvusL2Index  # noqa: E402
from ragcun.index.protocol import VectorIndex  # noqa: E402
from ragcun.io.saves import SaveFormatError  # noqa: E402
from ragcun.store.doc_store import DocStore, Record  # noqa: E402

DIM, N = 16, 200
TAGS = ("red", "green", "blue")
SPECS = {
    "eq": {"tag": "red"},
    "in": {"tag": {"$in": ["green", "rare"]}},
    "gt": {"n": {"$gt": 150}},
    "and": {"$and": [{"tag": "blue"}, {"n": {"$lt": 100}}]},
    "or": {"$or": [{"tag": "rare"}, {"n": {"$gte": 190}}]},
    "ne_missing_key": {"group": {"$ne": 1}},
    "not": {"$not": {"tag": {"$in": ["red", "blue"]}}},
}
WIDENED = {  # Milvus cannot express these exactly: it returns a superset, Python narrows it
    "substring": {"tag": {"$text_match": "ar"}},
    "negated_ordering": {"$not": {"n": {"$lte": 100}}},
    "callable": lambda md: md["n"] % 7 == 0,
}


class SpyIndex(MilvusL2Index):
    """A real ``MilvusL2Index`` that records ``(filter, k, ids returned)`` for every search."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[Any, int, list[list[str | None]]]] = []

    def search(self, queries: np.ndarray, k: int, filter: Any = None) -> tuple[list[list[str | None]], np.ndarray]:
        """``MilvusL2Index.search``, recorded."""
        ids, dist = super().search(queries, k, filter)
        self.calls.append((filter, k, ids))
        return ids, dist


def _metadata(i: int) -> dict[str, Any]:
    meta = {"n": i, "tag": "rare" if i % 50 == 0 else TAGS[i % 3]}
    if i % 4:
        meta["group"] = i % 3
    return meta


@pytest.fixture(scope="module")
def data() -> tuple[list[Record], np.ndarray, np.ndarray]:
    """200 records with metadata ``n``, ``tag`` (4 are "rare") and, on 3 in 4, ``group``; 16-d vectors; 4 queries."""
    rng = np.random.default_rng(11)
    records = [Record(f"r{i}", f"text {i}", _metadata(i)) for i in range(N)]
    return records, rng.standard_normal((N, DIM)).astype(np.float32), rng.standard_normal((4, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    """One Milvus Lite file for every collection in this module."""
    return str(tmp_path_factory.mktemp("pushdown") / "pushdown.db")


@pytest.fixture(scope="module")
def stores(db, data):
    """The same records in a ``DocStore`` on Milvus Lite (spied) and in one on ``L2Index``."""
    records, vectors, _ = data
    milvus, exact = DocStore(SpyIndex(db, collection="core")), DocStore(L2Index())
    milvus.add(records, vectors)
    exact.add(records, vectors)
    yield milvus, exact
    milvus.index.close()


def assert_same_hits(got: list, want: list) -> None:
    assert [h.record.id for h in got] == [h.record.id for h in want]
    np.testing.assert_allclose([h.distance for h in got], [h.distance for h in want], atol=1e-3)


def test_capabilities(stores):
    milvus, _ = stores
    assert isinstance(milvus.index, VectorIndex) and milvus.index.capabilities.metadata_filter
    assert not milvus.index.capabilities.saves_to_dir
    assert isinstance(L2Index(), VectorIndex) and not L2Index().capabilities.metadata_filter
    assert L2Index().capabilities.saves_to_dir


def test_metadata_are_stored_in_milvus(stores, data):
    milvus, _ = stores
    records = data[0]
    assert milvus.index.get_metadata([r.id for r in records[:5]]) == [r.metadata for r in records[:5]]


@pytest.mark.parametrize("name", list(SPECS))
def test_pushed_filter_runs_in_milvus_and_matches_l2index(stores, data, name):
    milvus, exact = stores
    spec, keep = SPECS[name], compile_filter(SPECS[name])
    for query in data[2]:
        milvus.index.calls.clear()
        hits = milvus.search(query, 5, filter=spec)
        assert_same_hits(hits, exact.search(query, 5, filter=spec))
        assert hits and all(keep(h.record.metadata) for h in hits)
        (sent, _, returned), = milvus.index.calls  # one round trip: Milvus filtered, no over-fetch loop
        assert sent is spec
        assert all(keep(milvus.get([i])[0].metadata) for i in returned[0] if i is not None)


@pytest.mark.parametrize("name", list(WIDENED))
def test_widened_filters_are_narrowed_in_python(stores, data, name):
    milvus, exact = stores
    for query in data[2]:
        assert_same_hits(milvus.search(query, 5, filter=WIDENED[name]), exact.search(query, 5, filter=WIDENED[name]))


def test_selective_filter_returns_only_matches_and_stops_at_padding(stores, data):
    milvus, exact = stores
    milvus.index.calls.clear()
    hits = milvus.search(data[2][0], 10, filter={"tag": "rare"})
    assert sorted(h.record.id for h in hits) == ["r0", "r100", "r150", "r50"]
    assert_same_hits(hits, exact.search(data[2][0], 10, filter={"tag": "rare"}))
    (_, k, returned), = milvus.index.calls
    assert k > 10 and sorted(i for i in returned[0] if i is not None) == sorted(h.record.id for h in hits)
    assert returned[0][4:] == [None] * (k - 4)


def test_filter_and_record_predicate_combine(stores, data):
    milvus, exact = stores
    where = lambda rec: rec.id.endswith("5")  # noqa: E731
    for store in (milvus, exact):
        hits = store.search(data[2][1], 3, where, {"tag": "green"})
        assert hits and all(h.record.id.endswith("5") and h.record.metadata["tag"] == "green" for h in hits)
    assert_same_hits(milvus.search(data[2][1], 3, where, {"tag": "green"}),
                     exact.search(data[2][1], 3, where, {"tag": "green"}))


def test_mmr_with_filter_matches_l2index(stores, data):
    milvus, exact = stores
    spec = SPECS["or"]
    milvus.index.calls.clear()
    got = milvus.mmr_search(data[2][2], 3, fetch_k=8, lambda_mult=0.3, filter=spec)
    assert [h.record.id for h in got] == [h.record.id for h in exact.mmr_search(data[2][2], 3, 8, 0.3, filter=spec)]
    assert milvus.index.calls[0][0] is spec


def test_langchain_store_pushes_its_dict_filter(stores, data):
    milvus, exact = stores
    emb = DeterministicFakeEmbedding(size=DIM)
    lc_milvus = langchain_ragcun.GaussianVectorStore(emb, store=milvus)
    lc_exact = langchain_ragcun.GaussianVectorStore(emb, store=exact)
    query = data[2][3].tolist()
    for spec in SPECS.values():
        milvus.index.calls.clear()
        got = lc_milvus.similarity_search_with_score_by_vector(query, k=4, filter=spec)
        want = lc_exact.similarity_search_with_score_by_vector(query, k=4, filter=spec)
        assert [d.id for d, _ in got] == [d.id for d, _ in want]
        assert milvus.index.calls[0][0] is spec
    mmr = lc_milvus.max_marginal_relevance_search_by_vector(query, k=2, fetch_k=6, filter=SPECS["eq"])
    assert {d.metadata["tag"] for d in mmr} == {"red"} and milvus.index.calls[-1][0] is SPECS["eq"]


@pytest.fixture(scope="module")
def llama_stores(db, data):
    """60 LlamaIndex nodes (sources ``doc-0``..``doc-2``) in a Milvus-backed (spied) and an ``L2Index``-backed store."""
    _, vectors, _ = data

    def nodes() -> list[TextNode]:
        return [TextNode(id_=f"node-{i}", text=f"text {i}", embedding=vectors[i].tolist(), metadata=_metadata(i),
                         relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i % 3}")})
                for i in range(60)]

    milvus = li_store.GaussianVectorStore(index=SpyIndex(db, collection="llama"))
    exact = li_store.GaussianVectorStore()
    milvus.add(nodes())
    exact.add(nodes())
    yield milvus, exact
    milvus.client.close()


def _f(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


@pytest.mark.parametrize("filters", [
    MetadataFilters(filters=[_f("tag", "red")]),
    MetadataFilters(filters=[_f("tag", ["green", "blue"], FilterOperator.IN)]),
    MetadataFilters(filters=[_f("n", 30, FilterOperator.GT)]),
    MetadataFilters(filters=[_f("tag", "blue"), _f("n", 40, FilterOperator.LT)]),
    MetadataFilters(filters=[_f("tag", "rare"), _f("n", 55, FilterOperator.GTE)], condition=FilterCondition.OR),
], ids=["eq", "in", "gt", "and", "or"])
def test_llamaindex_store_pushes_metadata_filters(llama_stores, data, filters):
    milvus, exact = llama_stores
    query = VectorStoreQuery(query_embedding=data[2][0].tolist(), similarity_top_k=5, filters=filters)
    milvus.client.calls.clear()
    got, want = milvus.query(query), exact.query(query)
    assert got.ids == want.ids and got.ids
    np.testing.assert_allclose(got.similarities, want.similarities, atol=1e-4)
    sent, _, returned = milvus.client.calls[0]
    assert sent == li_store.to_filter_spec(filters)
    keep = compile_filter(sent)
    assert all(keep(m) for m in milvus.client.get_metadata([i for i in returned[0] if i is not None]))


def test_llamaindex_doc_ids_are_pushed_down(llama_stores, data):
    milvus, exact = llama_stores
    query = VectorStoreQuery(query_embedding=data[2][1].tolist(), similarity_top_k=4, doc_ids=["doc-1"],
                             filters=MetadataFilters(filters=[_f("n", 20, FilterOperator.GT)]))
    milvus.client.calls.clear()
    got = milvus.query(query)
    assert got.ids == exact.query(query).ids
    assert all(int(i.split("-")[1]) % 3 == 1 and int(i.split("-")[1]) > 20 for i in got.ids)
    assert {"ref_doc_id": {"$in": ["doc-1"]}} in milvus.client.calls[0][0]["$and"]


def test_load_restores_stale_index_metadata(db, data, tmp_path):
    """A store saved over an index whose metadata are stale (e.g. added before pushdown) is repaired on load."""
    records, vectors, queries = data
    records, vectors, ids = records[:40], vectors[:40], [r.id for r in records[:40]]
    exact = DocStore(L2Index())
    exact.add(records, vectors)
    red = {"tag": "red"}
    with MilvusL2Index(db, collection="reload") as index:
        store = DocStore(index)
        store.add(records, vectors)
        store.save(tmp_path / "store")
        index.add(ids, vectors)  # rows without metadata, as an index filled before pushdown holds them
        assert store.search(queries[0], 5, filter=red) == []  # Milvus now filters every row out
        loaded, _ = DocStore.load(tmp_path / "store", index=index)
        assert index.get_metadata(ids) == [r.metadata for r in records]
        assert_same_hits(loaded.search(queries[0], 5, filter=red), exact.search(queries[0], 5, filter=red))
        index.remove(ids[:1])
        index.add(["stranger"], vectors[:1])
        with pytest.raises(SaveFormatError, match="missing from the index"):
            DocStore.load(tmp_path / "store", index=index)
