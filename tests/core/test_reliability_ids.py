"""A single string where a list of ids, texts or nodes belongs is refused by every public method that takes one.

Iterating ``"ab"`` gives the ids ``"a"`` and ``"b"``: deleting or fetching them instead of refusing
loses or returns other records.
"""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from langchain_ragcun import GaussianVectorStore as LangChainStore
from llama_index.vector_stores.ragcun import GaussianVectorStore as LlamaStore
from ragcun.store.doc_store import DocStore, Record

IDS = ["a", "b", "ab"]


def _vecs(n: int, dim: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def test_doc_store_refuses_a_bare_string_and_keeps_every_record() -> None:
    store = DocStore()
    store.add([Record(i, f"text {i}") for i in IDS], _vecs(3))
    for call in (lambda: store.delete("ab"), lambda: store.get("ab"), lambda: store.delete(b"ab"),
                 lambda: store.delete("ab", missing_ok=False)):
        with pytest.raises(TypeError, match="not a single (string|bytes object)"):
            call()
    assert store.ids == IDS and store.index.count == 3
    assert [r.id for r in store.get(["ab", "zz"])] == ["ab"]
    assert store.delete(["ab"]) == 1 and store.ids == ["a", "b"]


def test_langchain_store_refuses_a_bare_string() -> None:
    db = LangChainStore(DeterministicFakeEmbedding(size=8))
    db.add_texts(["one", "two", "three"], ids=IDS)
    for call in (lambda: db.delete("ab"), lambda: db.get_by_ids("ab"), lambda: db.add_texts(["x", "y"], ids="ab")):
        with pytest.raises(TypeError, match="not a single string"):
            call()
    assert sorted(d.id for d in db.get_by_ids(IDS)) == sorted(IDS)
    assert db.store.ids == IDS


def test_llama_index_store_refuses_a_bare_string() -> None:
    store = LlamaStore()
    store.add([TextNode(id_=i, text=f"text {i}", embedding=v.tolist()) for i, v in zip(IDS, _vecs(3))])
    for call in (lambda: store.delete_nodes("ab"), lambda: store.get_nodes("ab"),
                 lambda: store.query(VectorStoreQuery(query_embedding=_vecs(1)[0].tolist(), node_ids="ab")),
                 lambda: store.query(VectorStoreQuery(query_embedding=_vecs(1)[0].tolist(), doc_ids="ab"))):
        with pytest.raises(TypeError, match="not a single string"):
            call()
    assert sorted(n.node_id for n in store.get_nodes(IDS)) == sorted(IDS)
    store.delete_nodes(["ab"])
    assert sorted(n.node_id for n in store.get_nodes()) == ["a", "b"]


@pytest.mark.parametrize("texts", ["hello world", b"hello world"])
def test_langchain_store_refuses_a_bare_string_of_texts_and_adds_nothing(texts) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    db = LangChainStore.from_texts(["one"], emb, ids=["one"])
    for call in (lambda: db.add_texts(texts), lambda: db.add_embeddings(texts),
                 lambda: LangChainStore.from_texts(texts, emb)):
        with pytest.raises(TypeError, match=r"^(texts|text_embeddings) must be a list or other sequence, not a single"):
            call()
    assert db.store.ids == ["one"]


def test_langchain_store_takes_texts_from_any_iterable() -> None:
    db = LangChainStore(DeterministicFakeEmbedding(size=8))
    assert len(db.add_texts(t for t in ("one", "two"))) == 2 and len(db.store) == 2


def test_llama_index_store_refuses_a_bare_string_of_nodes_and_adds_nothing() -> None:
    store = LlamaStore()
    with pytest.raises(TypeError, match="^nodes must be a list or other sequence, not a single string"):
        store.add("hello world")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^node_ids must be a list or other sequence"):
        store.get_nodes("ab")
    assert len(store.store) == 0


def test_doc_store_refuses_a_bare_string_of_records_and_adds_nothing() -> None:
    store = DocStore()
    with pytest.raises(TypeError, match="^records must be a list or other sequence, not a single string"):
        store.add("ab", _vecs(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="records must be ragcun Record objects; got dict"):
        store.add([{"id": "a"}], _vecs(1))  # type: ignore[list-item]
    assert len(store) == 0 and store.index.count == 0
