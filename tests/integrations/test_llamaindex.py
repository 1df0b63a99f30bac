"""LlamaIndex adapters: real VectorStoreIndex on the bundled model, plus store mechanics on random vectors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore
from ragcun.index.faiss_l2 import L2Index
from ragcun.index.protocol import VectorIndex
from ragcun.io.saves import SaveFormatError

DOCS = {
    "paris": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "plants": "Photosynthesis converts light energy into chemical energy in plants.",
    "python": "Python is a popular programming language for data science.",
    "reef": "The Great Barrier Reef is the world's largest coral reef system.",
}


@pytest.fixture(scope="module")
def embed_model() -> GaussianEmbedding:
    return GaussianEmbedding(embed_batch_size=8)


def _documents() -> list[Document]:
    return [Document(text=t, doc_id=k, metadata={"topic": k}) for k, t in DOCS.items()]


def test_embedding_basics_and_errors(embed_model: GaussianEmbedding) -> None:
    q = embed_model.get_query_embedding("iron tower in Paris")
    docs = embed_model.get_text_embedding_batch(list(DOCS.values()))
    assert len(q) == embed_model.dimension == 384 and len(docs) == 4
    dist = np.linalg.norm(np.array(docs) - np.array(q), axis=1)
    assert int(np.argmin(dist)) == 0
    assert np.linalg.norm(q) > 2.0  # unnormalised
    a = asyncio.run(embed_model.aget_query_embedding("iron tower in Paris"))
    np.testing.assert_allclose(a, q, rtol=1e-5, atol=1e-5)
    assert len(asyncio.run(embed_model.aget_text_embedding_batch(["a", "b"]))) == 2
    with pytest.raises(ValueError, match="empty"):
        embed_model.get_query_embedding("")
    with pytest.raises(ValueError, match="is None"):
        embed_model.get_text_embedding_batch(["ok", None])


def test_instructions_are_prepended() -> None:
    plain = GaussianEmbedding()
    prefixed = GaussianEmbedding(query_instruction="query: ", text_instruction="passage: ")
    assert plain._encoder is prefixed._encoder  # loaded once per process
    np.testing.assert_allclose(prefixed.get_query_embedding("tower"), plain.get_query_embedding("query: tower"),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prefixed.get_text_embedding("tower"), plain.get_text_embedding("passage: tower"),
                               rtol=1e-4, atol=1e-4)


def test_works_as_settings_embed_model(embed_model: GaussianEmbedding) -> None:
    old = Settings._embed_model
    Settings.embed_model = embed_model
    try:
        index = VectorStoreIndex.from_documents(
            _documents(), storage_context=StorageContext.from_defaults(vector_store=GaussianVectorStore()))
        hits = index.as_retriever(similarity_top_k=1).retrieve("coral reef")
    finally:
        Settings._embed_model = old
    assert hits[0].node.ref_doc_id == "reef"


def test_end_to_end_persist_reload_in_fresh_process_and_delete(embed_model, tmp_path) -> None:
    store = GaussianVectorStore()
    index = VectorStoreIndex.from_documents(
        _documents(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=2)
    hits = retriever.retrieve("How do plants turn sunlight into energy?")
    assert hits[0].node.ref_doc_id == "plants"
    assert 0.0 <= hits[1].score <= hits[0].score <= 1.0
    assert hits[0].node.metadata["l2_distance"] < hits[1].node.metadata["l2_distance"]
    assert "l2_distance" in hits[0].node.excluded_llm_metadata_keys

    persist_dir = tmp_path / "storage"
    index.storage_context.persist(persist_dir=str(persist_dir))
    assert (persist_dir / "default__vector_store" / "manifest.json").is_file()
    script = textwrap.dedent(f"""
        import json
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.embeddings.ragcun import GaussianEmbedding
        from llama_index.vector_stores.ragcun import GaussianVectorStore
        d = {str(persist_dir)!r}
        ctx = StorageContext.from_defaults(persist_dir=d, vector_store=GaussianVectorStore.from_persist_dir(d))
        index = load_index_from_storage(ctx, embed_model=GaussianEmbedding())
        hits = index.as_retriever(similarity_top_k=2).retrieve("How do plants turn sunlight into energy?")
        print(json.dumps([[h.node.node_id, h.score] for h in hits]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    reloaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r[0] for r in reloaded] == [h.node.node_id for h in hits]
    np.testing.assert_allclose([r[1] for r in reloaded], [h.score for h in hits], rtol=1e-5, atol=1e-6)

    index.delete_ref_doc("plants")
    again = index.as_retriever(similarity_top_k=4).retrieve("How do plants turn sunlight into energy?")
    assert "plants" not in {h.node.ref_doc_id for h in again} and len(again) == 3


# ---- mechanics on small random vectors -------------------------------------------------------
def _nodes(n: int = 30, dim: int = 8) -> tuple[list[TextNode], np.ndarray]:
    vecs = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    nodes = [TextNode(text=f"node {i}", id_=f"n{i}", embedding=vecs[i].tolist(),
                      metadata={"i": i, "parity": "even" if i % 2 == 0 else "odd", "tags": ["a", f"t{i % 3}"]})
             for i in range(n)]
    for node in nodes:
        node.relationships = {}
    return nodes, vecs


@pytest.fixture()
def store() -> GaussianVectorStore:
    s = GaussianVectorStore()
    s.add(_nodes()[0])
    return s


def _query(vec: np.ndarray, k: int = 30, **kw) -> VectorStoreQuery:
    return VectorStoreQuery(query_embedding=vec.tolist(), similarity_top_k=k, **kw)


def _f(key: str, value, op: FilterOperator) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


@pytest.mark.parametrize("filters, expected", [
    (MetadataFilters(filters=[_f("parity", "even", FilterOperator.EQ)]), {i for i in range(30) if i % 2 == 0}),
    (MetadataFilters(filters=[_f("parity", "even", FilterOperator.NE)]), {i for i in range(30) if i % 2}),
    (MetadataFilters(filters=[_f("i", 27, FilterOperator.GT)]), {28, 29}),
    (MetadataFilters(filters=[_f("i", 27, FilterOperator.GTE)]), {27, 28, 29}),
    (MetadataFilters(filters=[_f("i", 2, FilterOperator.LT)]), {0, 1}),
    (MetadataFilters(filters=[_f("i", 2, FilterOperator.LTE)]), {0, 1, 2}),
    (MetadataFilters(filters=[_f("i", [3, 5], FilterOperator.IN)]), {3, 5}),
    (MetadataFilters(filters=[_f("i", list(range(2, 30)), FilterOperator.NIN)]), {0, 1}),
    (MetadataFilters(filters=[_f("tags", "t1", FilterOperator.CONTAINS), _f("i", 10, FilterOperator.LT)]), {1, 4, 7}),
    (MetadataFilters(filters=[_f("i", 1, FilterOperator.EQ), _f("i", 2, FilterOperator.EQ)],
                     condition=FilterCondition.OR), {1, 2}),
    (MetadataFilters(filters=[_f("i", 0, FilterOperator.EQ),
                              MetadataFilters(filters=[_f("i", 28, FilterOperator.GT),
                                                       _f("parity", "odd", FilterOperator.EQ)])],
                     condition=FilterCondition.OR), {0, 29}),
])
def test_query_filters(store: GaussianVectorStore, filters: MetadataFilters, expected: set[int]) -> None:
    _, vecs = _nodes()
    res = store.query(_query(vecs[0], filters=filters))
    assert {n.metadata["i"] for n in res.nodes} == expected
    assert {n.metadata["i"] for n in store.get_nodes(filters=filters)} == expected


def test_query_order_scores_ids_and_modes(store: GaussianVectorStore) -> None:
    _, vecs = _nodes()
    res = store.query(_query(vecs[4], k=5))
    assert res.ids[0] == "n4" and res.nodes[0].get_content() == "node 4"
    assert res.similarities == sorted(res.similarities, reverse=True) and res.similarities[0] == 1.0
    assert store.query(_query(vecs[4], k=3, node_ids=["n1", "n2"])).ids in (["n1", "n2"], ["n2", "n1"])
    mmr = store.query(_query(vecs[4], k=5, mode=VectorStoreQueryMode.MMR), mmr_threshold=0.5)
    assert mmr.ids[0] == "n4" and len(set(mmr.ids)) == 5
    assert store.query(_query(vecs[4], k=5, mode=VectorStoreQueryMode.MMR), mmr_threshold=1.0).ids == res.ids
    with pytest.raises(ValueError, match="query mode 'sparse'"):
        store.query(_query(vecs[4], mode=VectorStoreQueryMode.SPARSE))
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="x"))
    for empty in (VectorStoreQuery(), VectorStoreQuery(query_str=" ")):  # what a retriever sends for ""
        with pytest.raises(ValueError, match="the query is empty"):
            store.query(empty)
    with pytest.raises(ValueError, match="dimension 3"):
        store.query(_query(np.zeros(3)))


def test_delete_get_clear_async_and_bad_nodes(store: GaussianVectorStore) -> None:
    _, vecs = _nodes()
    assert [n.node_id for n in store.get_nodes(["n3", "missing", "n1"])] == ["n3", "n1"]
    store.delete_nodes(["n0", "n1"])
    assert "n0" not in store.query(_query(vecs[0])).ids and len(store.get_nodes()) == 28
    store.delete_nodes(filters=MetadataFilters(filters=[_f("parity", "odd", FilterOperator.EQ)]))
    assert len(store.get_nodes()) == 14
    asyncio.run(store.adelete_nodes(["n2"]))
    assert len(asyncio.run(store.aget_nodes())) == 13
    res = asyncio.run(store.aquery(_query(vecs[4], k=1)))
    assert res.ids == ["n4"]
    asyncio.run(store.aclear())
    assert store.get_nodes() == [] and store.query(_query(vecs[4])).ids == []
    with pytest.raises(ValueError, match="no embedding"):
        store.add([TextNode(text="x")])
    with pytest.raises(ValueError, match="NaN"):
        store.add([TextNode(text="x", embedding=[float("nan")] * 8)])


def test_a_keyword_a_method_does_not_take_is_a_type_error_naming_it(store: GaussianVectorStore) -> None:
    nodes, vecs = _nodes()
    calls = [
        ("add", lambda **kw: store.add([TextNode(text="new", id_="new", embedding=vecs[0].tolist())], **kw)),
        ("query", lambda **kw: store.query(_query(vecs[0], k=3), **kw)),
        ("delete", lambda **kw: store.delete("n0", **kw)),
        ("delete_nodes", lambda **kw: store.delete_nodes(["n0"], **kw)),
        ("delete_nodes", lambda **kw: asyncio.run(store.adelete_nodes(["n0"], **kw))),
        ("add", lambda **kw: asyncio.run(store.async_add([TextNode(text="x", id_="x", embedding=vecs[0].tolist())],
                                                           **kw))),
    ]
    for method, call in calls:
        with pytest.raises(TypeError, match=rf"GaussianVectorStore\.{method}\(\) got unexpected keyword "
                                            r"argument\(s\) mmr_treshold"):
            call(mmr_treshold=0.5)
    assert len(store.get_nodes()) == len(nodes)  # nothing added or deleted
    mmr = store.query(_query(vecs[4], k=3, mode=VectorStoreQueryMode.MMR), mmr_threshold=0.5, mmr_prefetch_k=10)
    assert len(mmr.ids) == 3


def test_delete_nodes_by_filter_shares_the_core_path_and_an_error_deletes_nothing(store: GaussianVectorStore) -> None:
    with pytest.raises(ValueError, match="unsupported filter operator"):
        store.delete_nodes(filters=MetadataFilters(filters=[_f("i", 1, FilterOperator.IS_EMPTY),
                                                            _f("i", "x", FilterOperator.TEXT_MATCH_INSENSITIVE)]))
    assert len(store.get_nodes()) == 30
    calls: list[tuple] = []
    core_delete_where = store.store.delete_where
    store.store.delete_where = lambda *a, **kw: calls.append(a) or core_delete_where(*a, **kw)  # type: ignore[method-assign]
    store.delete_nodes(["n0", "n1", "n2", "n3"], filters=MetadataFilters(filters=[_f("parity", "odd", FilterOperator.EQ)]))
    assert len(calls) == 1 and {n.node_id for n in store.get_nodes(["n0", "n1", "n2", "n3"])} == {"n0", "n2"}


def test_wraps_any_vector_index_and_persists(tmp_path) -> None:
    index = L2Index(8, factory="HNSW16", ef_search=64)
    store = GaussianVectorStore(index=index)
    assert store.client is index and isinstance(store.client, VectorIndex)
    nodes, vecs = _nodes()
    asyncio.run(store.async_add(nodes))
    assert index.count == 30
    store.persist(str(tmp_path / "default__vector_store.json"))
    again = GaussianVectorStore.from_persist_dir(str(tmp_path))
    assert again.query(_query(vecs[7], k=3)).ids == store.query(_query(vecs[7], k=3)).ids
    assert again.client.factory == "HNSW16"
    (tmp_path / "default__vector_store" / "records.json").write_text("[]")
    with pytest.raises(SaveFormatError, match="records.json"):
        GaussianVectorStore.from_persist_dir(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        GaussianVectorStore.from_persist_dir(str(tmp_path / "nothing"))
