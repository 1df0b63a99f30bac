"""Hybrid retrieval through the real frameworks: LlamaIndex's VectorStoreIndex retriever and LangChain retrievers,
on the bundled model; and on a SciFact subset, hybrid beats dense through both."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from repo_paths import shared_path

from langchain_ragcun import GaussianEmbeddings
from langchain_ragcun import GaussianVectorStore as LCStore
from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore as LIStore

DOCS = {
    "err": "Error XK-4711 means the flux capacitor overheated; let it cool down before restarting.",
    "tower": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "plants": "Photosynthesis converts light energy into chemical energy in plants.",
    "python": "Python is a popular programming language for data science.",
    "reef": "The Great Barrier Reef is the world's largest coral reef system.",
    "boil": "Water boils at one hundred degrees Celsius at sea level.",
}


@pytest.fixture(scope="module")
def li_embed() -> GaussianEmbedding:
    return GaussianEmbedding(embed_batch_size=8)


@pytest.fixture(scope="module")
def li_index(li_embed) -> VectorStoreIndex:
    storage = StorageContext.from_defaults(vector_store=LIStore())
    docs = [Document(text=t, doc_id=k, metadata={"topic": k}) for k, t in DOCS.items()]
    return VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=li_embed)


def _topics(nodes) -> list[str]:
    return [n.node.metadata["topic"] for n in nodes]


def test_llamaindex_hybrid_text_search_and_default_modes(li_index) -> None:
    hybrid = li_index.as_retriever(vector_store_query_mode="hybrid", alpha=0.7, similarity_top_k=3).retrieve("XK-4711")
    assert _topics(hybrid)[0] == "err"
    assert all(0.0 <= n.score <= 1.0 for n in hybrid)
    top = hybrid[0].node.metadata
    assert top["retrieval_mode"] == "hybrid" and top["bm25_score"] > 0 and top["l2_distance"] > 0
    assert "bm25_score" in hybrid[0].node.excluded_llm_metadata_keys
    text = li_index.as_retriever(vector_store_query_mode="text_search", similarity_top_k=3).retrieve("Eiffel")
    assert _topics(text) == ["tower"] and text[0].node.metadata["retrieval_mode"] == "sparse"
    default = li_index.as_retriever(similarity_top_k=2).retrieve("XK-4711 flux capacitor")
    assert _topics(default)[0] == "err" and default[0].node.metadata["retrieval_mode"] == "hybrid"
    dense_only = li_index.as_retriever(vector_store_query_mode="hybrid", alpha=1.0, similarity_top_k=6).retrieve("XK-4711")
    dense_store = LIStore(store=li_index.vector_store.store, retrieval_mode="dense")
    dense = VectorStoreIndex.from_vector_store(dense_store, embed_model=li_index._embed_model)
    assert _topics(dense.as_retriever(similarity_top_k=6).retrieve("XK-4711")) == _topics(dense_only)


def test_llamaindex_fallback_and_errors(li_index) -> None:
    nodes = li_index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2).retrieve("the of and")
    assert nodes and nodes[0].node.metadata["retrieval_mode"] == "dense (no lexical terms in the query)"
    with pytest.raises(ValueError, match="alpha"):
        li_index.as_retriever(vector_store_query_mode="hybrid", alpha=2.0).retrieve("Eiffel")
    with pytest.raises(ValueError, match="retrieval mode"):
        LIStore(retrieval_mode="bm25")


def test_llamaindex_hybrid_survives_persist_and_load(li_index, li_embed, tmp_path) -> None:
    li_index.storage_context.persist(str(tmp_path))
    store = LIStore.from_persist_dir(str(tmp_path))
    index = VectorStoreIndex.from_vector_store(store, embed_model=li_embed)
    got = index.as_retriever(vector_store_query_mode="text_search", similarity_top_k=1).retrieve("capacitor")
    assert _topics(got) == ["err"]


@pytest.fixture(scope="module")
def lc_db() -> LCStore:
    return LCStore.from_texts(list(DOCS.values()), GaussianEmbeddings(), metadatas=[{"topic": k} for k in DOCS],
                              ids=list(DOCS))


def test_langchain_retrieval_modes(lc_db) -> None:
    assert lc_db.retrieval_mode == "hybrid"
    assert lc_db.similarity_search("XK-4711", k=1)[0].id == "err"
    lexical = lc_db.as_retriever(search_kwargs={"k": 3, "retrieval_mode": "sparse"}).invoke("Celsius")
    assert [d.id for d in lexical] == ["boil"]
    scored = lc_db.similarity_search_with_relevance_scores("coral reef", k=3, retrieval_mode="hybrid", alpha=0.5)
    assert scored[0][0].id == "reef" and all(0.0 <= s <= 1.0 for _, s in scored)
    dense = lc_db.similarity_search_with_score("coral reef", k=3, retrieval_mode="dense")
    assert [d for _, d in dense] == sorted(d for _, d in dense)
    filtered = lc_db.similarity_search("XK-4711", k=2, filter={"topic": {"$ne": "err"}})
    assert "err" not in [d.id for d in filtered]
    with pytest.raises(ValueError, match="alpha"):
        lc_db.similarity_search("reef", alpha=-0.1)


def test_langchain_delete_reaches_lexical_and_save_load(lc_db, tmp_path) -> None:
    db = LCStore(lc_db.embeddings)
    db.add_documents([LCDocument(page_content=t, id=k) for k, t in DOCS.items()])
    db.delete(["err"])
    assert "err" not in [d.id for d in db.similarity_search("XK-4711", k=6, retrieval_mode="sparse")]
    db.save_local(tmp_path / "db")
    loaded = LCStore.load_local(tmp_path / "db", lc_db.embeddings, retrieval_mode="lexical")
    assert [d.id for d in loaded.similarity_search("Eiffel", k=3)] == ["tower"]


def _ndcg10(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    from ragcun_eval.metrics import evaluate

    return evaluate(ranked, qrels)["ndcg@10"]


@pytest.mark.slow
def test_scifact_subset_hybrid_beats_dense_in_both_frameworks(li_embed) -> None:
    """60 SciFact test queries over 600 documents: hybrid nDCG@10 clearly above dense (cosine-equivalent) L2
    (measured +7.6% with `ragcun-eval retrieval ... --max-queries 60 --max-docs 600`)."""
    from ragcun_eval.beir import load_beir

    data = load_beir(shared_path("data", "beir", "scifact"), "test").subset(60, 600)
    vectors = li_embed.get_text_embedding_batch(data.doc_texts)
    nodes = [TextNode(id_=d, text=t, embedding=v) for d, t, v in zip(data.doc_ids, data.doc_texts, vectors)]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=LIStore()),
                             embed_model=li_embed)
    db = LCStore(GaussianEmbeddings())
    db.add_embeddings(zip(data.doc_texts, vectors), ids=data.doc_ids)
    runs: dict[str, dict[str, list[str]]] = {"li_dense": {}, "li_hybrid": {}, "lc_dense": {}, "lc_hybrid": {}}
    for mode in ("dense", "hybrid"):
        retriever = index.as_retriever(vector_store_query_mode="default" if mode == "dense" else "hybrid",
                                       similarity_top_k=10)
        if mode == "dense":
            index.vector_store.retrieval_mode = "dense"
        for qid, text in data.queries.items():
            runs[f"li_{mode}"][qid] = [n.node.node_id for n in retriever.retrieve(text)]
            runs[f"lc_{mode}"][qid] = [d.id for d in db.similarity_search(text, k=10, retrieval_mode=mode)]
        index.vector_store.retrieval_mode = "hybrid"
    scores = {name: _ndcg10(run, data.qrels) for name, run in runs.items()}
    assert scores["li_dense"] == pytest.approx(scores["lc_dense"], abs=1e-6)
    assert scores["li_hybrid"] == pytest.approx(scores["lc_hybrid"], abs=1e-6)
    assert scores["li_hybrid"] >= 1.05 * scores["li_dense"], scores
    assert np.isfinite(list(scores.values())).all()
