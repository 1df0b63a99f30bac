"""End to end on Milvus Lite: LlamaIndex ``VectorStoreIndex`` and a LangChain retriever over
``GaussianVectorStore(index=MilvusL2Index(...))`` with the bundled Gaussian model, then a fresh
process that opens the same Milvus Lite file (and the persisted texts) and gets the same results.

The tests share module-scoped stores and run in file order: the last one closes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason='Milvus tests need the extra: pip install "ragcun[milvus]"')
pytest.importorskip("milvus_lite", reason='Milvus tests need Milvus Lite: pip install "ragcun[milvus]"')

from langchain_core.documents import Document as LCDocument  # noqa: E402
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters  # noqa: E402

import langchain_ragcun  # noqa: E402
import llama_index.vector_stores.ragcun as li_store  # noqa: E402
from llama_index.embeddings.ragcun import GaussianEmbedding  # noqa: E402
from ragcun.index.milvus.index import MilvusL2Index  # noqa: E402

pytestmark = pytest.mark.slow

DOCS = {
    "paris": ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France.", "travel"),
    "rome": ("The Colosseum is an ancient amphitheatre in the centre of Rome.", "travel"),
    "plants": ("Photosynthesis converts light energy into chemical energy in plants.", "science"),
    "reef": ("The Great Barrier Reef is the world's largest coral reef system.", "science"),
    "python": ("Python is a popular programming language for data science.", "computing"),
}
QUERIES = {
    "iron tower in Paris": "paris",
    "How do plants turn sunlight into energy?": "plants",
    "coral reef": "reef",
    "programming language": "python",
}


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> dict:
    """One Milvus Lite file (two collections) and the folders the stores persist their texts to."""
    root = tmp_path_factory.mktemp("milvus_e2e")
    return {"db": str(root / "e2e.db"), "llama_dir": str(root / "llama"), "lc_dir": str(root / "langchain")}


@pytest.fixture(scope="module")
def llama(lite, bundled_encoder):
    """A LlamaIndex ``VectorStoreIndex`` whose vectors live in Milvus Lite."""
    store = li_store.GaussianVectorStore(index=MilvusL2Index(lite["db"], collection="llama"))
    documents = [Document(text=text, doc_id=key, metadata={"topic": topic}) for key, (text, topic) in DOCS.items()]
    index = VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=GaussianEmbedding(encoder=bundled_encoder))
    yield index
    store.client.close()


@pytest.fixture(scope="module")
def langchain(lite, bundled_encoder):
    """A LangChain ``GaussianVectorStore`` whose vectors live in Milvus Lite."""
    store = langchain_ragcun.GaussianVectorStore.from_texts(
        [text for text, _ in DOCS.values()], langchain_ragcun.GaussianEmbeddings(encoder=bundled_encoder),
        metadatas=[{"topic": topic} for _, topic in DOCS.values()], ids=list(DOCS),
        index=MilvusL2Index(lite["db"], collection="langchain"))
    yield store
    store.store.index.close()


def test_llamaindex_retrieves_the_right_documents(llama):
    retriever = llama.as_retriever(similarity_top_k=2)
    for query, key in QUERIES.items():
        hits = retriever.retrieve(query)
        assert hits[0].node.ref_doc_id == key, query
        assert 0.0 <= hits[1].score <= hits[0].score <= 1.0
    assert llama.vector_store.client.count == len(DOCS)


def test_llamaindex_filters_and_deletes(llama):
    science = MetadataFilters(filters=[MetadataFilter(key="topic", value="science")])
    hits = llama.as_retriever(similarity_top_k=5, filters=science).retrieve("iron tower in Paris")
    assert sorted(h.node.ref_doc_id for h in hits) == ["plants", "reef"]
    llama.delete_ref_doc("rome")
    assert llama.vector_store.client.count == len(DOCS) - 1
    hits = llama.as_retriever(similarity_top_k=5).retrieve("ancient amphitheatre in Rome")
    assert "rome" not in {h.node.ref_doc_id for h in hits} and len(hits) == len(DOCS) - 1


def test_langchain_retriever_finds_the_right_documents(langchain):
    retriever = langchain.as_retriever(search_kwargs={"k": 1})
    for query, key in QUERIES.items():
        assert retriever.invoke(query)[0].id == key, query
    filtered = langchain.similarity_search("iron tower in Paris", k=5, filter={"topic": "science"})
    assert sorted(d.id for d in filtered) == ["plants", "reef"]
    mmr = langchain.max_marginal_relevance_search("travel landmarks", k=2, fetch_k=5)
    assert len({d.id for d in mmr}) == 2
    scored = langchain.similarity_search_with_relevance_scores("coral reef", k=2)
    assert scored[0][0].id == "reef" and 0.0 <= scored[1][1] <= scored[0][1] <= 1.0


def test_langchain_add_and_delete(langchain, bundled_encoder):
    langchain.add_documents([LCDocument(page_content="Mount Fuji is the highest mountain in Japan.",
                                        metadata={"topic": "travel"})], ids=["fuji"])
    assert langchain.as_retriever(search_kwargs={"k": 1}).invoke("tallest Japanese mountain")[0].id == "fuji"
    assert langchain.delete(["fuji"])
    assert langchain.store.index.count == len(DOCS)


def test_fresh_process_opens_the_same_milvus_file(lite, llama, langchain):
    """Persist the texts, close this process's hold on the file, and query both stores from a new process."""
    llama.storage_context.persist(persist_dir=lite["llama_dir"])
    langchain.save_local(lite["lc_dir"])
    li_hits = llama.as_retriever(similarity_top_k=3).retrieve("coral reef")
    lc_hits = langchain.similarity_search_with_score("iron tower in Paris", k=3)
    llama.vector_store.client.close()
    langchain.store.index.close()
    script = textwrap.dedent(f"""
        import json
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.embeddings.ragcun import GaussianEmbedding
        from llama_index.vector_stores.ragcun import GaussianVectorStore
        from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore as LCStore
        from ragcun.index.milvus.index import MilvusL2Index

        d = {lite["llama_dir"]!r}
        store = GaussianVectorStore.from_persist_dir(d, index=MilvusL2Index({lite["db"]!r}, collection="llama"))
        index = load_index_from_storage(StorageContext.from_defaults(persist_dir=d, vector_store=store),
                                        embed_model=GaussianEmbedding())
        li = [[h.node.ref_doc_id, h.score] for h in index.as_retriever(similarity_top_k=3).retrieve("coral reef")]
        lc_store = LCStore.load_local({lite["lc_dir"]!r}, GaussianEmbeddings(),
                                      index=MilvusL2Index({lite["db"]!r}, collection="langchain"))
        lc = [[doc.id, dist] for doc, dist in lc_store.similarity_search_with_score("iron tower in Paris", k=3)]
        print(json.dumps({{"llama": li, "langchain": lc}}))
        store.client.close()
        lc_store.store.index.close()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [key for key, _ in out["llama"]] == [h.node.ref_doc_id for h in li_hits]
    np.testing.assert_allclose([s for _, s in out["llama"]], [h.score for h in li_hits], atol=1e-5)
    assert [key for key, _ in out["langchain"]] == [doc.id for doc, _ in lc_hits]
    np.testing.assert_allclose([d for _, d in out["langchain"]], [d for _, d in lc_hits], atol=1e-4)
