"""A save of one framework's store loads in the other's: the same texts, user metadata and neighbours as
the native load (LangChain documents become LlamaIndex ``TextNode``s; LlamaIndex nodes keep their own metadata)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from langchain_ragcun import GaussianVectorStore as LCStore
from llama_index.vector_stores.ragcun import GaussianVectorStore as LIStore
from ragcun.io.saves import MANIFEST, read_json
from ragcun.store.doc_store import DocStore, Record

FAKE = DeterministicFakeEmbedding(size=16)
TEXTS = {"p": "photosynthesis turns light into sugar", "m": "mitochondria make energy for the cell",
         "e": "the eiffel tower stands in paris", "r": "rivers carry water to the sea",
         "v": "volcanoes erupt molten rock"}
META = {i: {"topic": "biology" if i in "pm" else "earth", "rank": n, "tags": [i, "x"]} for n, i in enumerate(TEXTS)}
QUERY = "energy for cells and light"


def _lc_save(path: Path) -> Path:
    LCStore.from_texts(list(TEXTS.values()), FAKE, [META[i] for i in TEXTS], ids=list(TEXTS)).save_local(path)
    return path


def _li_save(path: Path) -> Path:
    store = LIStore()
    store.add([TextNode(id_=i, text=t, metadata=META[i], embedding=FAKE.embed_query(t),
                        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i}")})
               for i, t in TEXTS.items()])
    store.persist(str(path / "default__vector_store.json"))
    return path / "default__vector_store"


def _lc_view(store: LCStore) -> tuple:
    """Texts and metadata by id, the dense and hybrid neighbours of :data:`QUERY`."""
    docs = {d.id: (d.page_content, d.metadata) for d in store.get_by_ids(list(TEXTS))}
    vector = FAKE.embed_query(QUERY)
    return (docs, [d.id for d in store.similarity_search_by_vector(vector, k=3)],
            [d.id for d in store.similarity_search(QUERY, k=3)])


def _li_view(store: LIStore) -> tuple:
    nodes = {n.node_id: (n.get_content(), n.metadata) for n in store.get_nodes(list(TEXTS))}
    vector = FAKE.embed_query(QUERY)
    dense = store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=3))
    hybrid = store.query(VectorStoreQuery(query_embedding=vector, query_str=QUERY, similarity_top_k=3,
                                          mode=VectorStoreQueryMode.HYBRID))
    return nodes, dense.ids, hybrid.ids


@pytest.mark.parametrize("save", [_lc_save, _li_save])
def test_each_adapter_records_its_framework_in_the_save(tmp_path: Path, save) -> None:
    folder = save(tmp_path)
    assert read_json(folder / MANIFEST)["extra"] == {"framework": "langchain" if save is _lc_save else "llama_index"}


def test_llamaindex_loads_a_langchain_save_as_the_native_load_sees_it(tmp_path: Path) -> None:
    folder = _lc_save(tmp_path)
    native, crossed = _lc_view(LCStore.load_local(folder, FAKE)), _li_view(LIStore.from_persist_path(str(folder)))
    assert crossed == native
    assert native[0] == {i: (t, META[i]) for i, t in TEXTS.items()}
    store = LIStore.from_persist_path(str(folder))
    only = MetadataFilters(filters=[ExactMatchFilter(key="topic", value="biology")])
    assert {n.node_id for n in store.get_nodes(filters=only)} == {"p", "m"}
    assert all(isinstance(n, TextNode) for n in store.get_nodes())


def test_langchain_loads_a_llamaindex_save_as_the_native_load_sees_it(tmp_path: Path) -> None:
    folder = _li_save(tmp_path)
    native, crossed = _li_view(LIStore.from_persist_path(str(folder))), _lc_view(LCStore.load_local(folder, FAKE))
    assert crossed == native
    assert native[0] == {i: (t, META[i]) for i, t in TEXTS.items()}
    store = LCStore.load_local(folder, FAKE)
    assert {d.id for d in store.similarity_search(QUERY, k=5, filter={"topic": "biology"})} == {"p", "m"}


def test_a_round_trip_through_the_other_framework_keeps_the_documents(tmp_path: Path) -> None:
    first = _lc_save(tmp_path / "lc")
    LIStore.from_persist_path(str(first)).persist(str(tmp_path / "li" / "default__vector_store.json"))
    back = LCStore.load_local(tmp_path / "li" / "default__vector_store", FAKE)
    assert _lc_view(back) == _lc_view(LCStore.load_local(first, FAKE))


def test_a_docstore_save_loads_in_both_frameworks(tmp_path: Path) -> None:
    core = DocStore()
    core.add([Record(i, t, META[i]) for i, t in TEXTS.items()], [FAKE.embed_query(t) for t in TEXTS.values()])
    folder = core.save(tmp_path / "core")
    assert _li_view(LIStore.from_persist_path(str(folder))) == _lc_view(LCStore.load_local(folder, FAKE))


def test_a_langchain_document_that_looks_like_a_node_stays_as_it_was(tmp_path: Path) -> None:
    odd = {"_node_content": "not a node", "source": "export"}
    LCStore.from_texts(["plain text"], FAKE, [odd], ids=["o"]).save_local(tmp_path)
    assert LCStore.load_local(tmp_path, FAKE).get_by_ids(["o"])[0].metadata == odd
