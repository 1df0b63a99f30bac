"""Cross-encoder rerankers behind ragcun's retrievers: LlamaIndex ``SentenceTransformerRerank`` on a real
``VectorStoreIndex``, LangChain ``CrossEncoderReranker`` in a ``ContextualCompressionRetriever`` with a
``HuggingFaceCrossEncoder``. A tiny random cross-encoder is built in the test (nothing downloads)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.postprocessor import SentenceTransformerRerank
from llama_index.core.schema import MetadataMode
from repo_paths import REPO_ROOT
from sentence_transformers import CrossEncoder

from langchain_ragcun import GaussianEmbeddings
from langchain_ragcun import GaussianVectorStore as LCStore
from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore as LIStore

with warnings.catch_warnings():  # langchain-community announces its sunset on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder

TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Photosynthesis turns light into chemical energy in plants.",
    "Chlorophyll absorbs red and blue light in leaves.",
    "Python is a popular language for data science.",
    "Mitochondria produce most of the cell's ATP.",
    "Leaves open their stomata to take in carbon dioxide.",
]
TOPICS = ["travel", "biology", "biology", "code", "biology", "biology"]
QUERY = "How do plants use sunlight?"
HIT_KEYS = ("l2_distance", "bm25_score", "retrieval_mode")


def _builder():
    """``build_tiny_cross_encoder`` from ``examples/tiny_cross_encoder.py`` (the examples use the same one)."""
    spec = importlib.util.spec_from_file_location("tiny_cross_encoder", REPO_ROOT / "examples" / "tiny_cross_encoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_cross_encoder


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> str:
    return _builder()(tmp_path_factory.mktemp("tiny_cross_encoder"))


def _order(scores) -> list[int]:
    return [int(i) for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]


@pytest.fixture(scope="module")
def li_index() -> VectorStoreIndex:
    embed_model = GaussianEmbedding()
    storage = StorageContext.from_defaults(vector_store=LIStore(calibrator=embed_model))
    documents = [Document(text=t, id_=f"d{i}", metadata={"topic": topic, "n": i})
                 for i, (t, topic) in enumerate(zip(TEXTS, TOPICS))]
    return VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed_model)


def test_llamaindex_rerank_takes_the_cross_encoders_order_and_scores(li_index, cross_encoder_dir) -> None:
    retriever = li_index.as_retriever(similarity_top_k=5)
    hits = retriever.retrieve(QUERY)
    before = [(h.node.node_id, h.score, dict(h.node.metadata)) for h in hits]
    seen = [h.node.get_content(metadata_mode=MetadataMode.EMBED) for h in hits]
    assert not any(key in text for text in seen for key in HIT_KEYS)  # the reranker reads text + user metadata only
    scores = CrossEncoder(cross_encoder_dir).predict([(QUERY, text) for text in seen])
    want = _order(scores)[:3]
    assert want != list(range(3))  # the cross-encoder reorders ragcun's hits (else this test could not fail)

    rerank = SentenceTransformerRerank(model=cross_encoder_dir, top_n=3, device="cpu", keep_retrieval_score=True)
    got = rerank.postprocess_nodes(hits, query_str=QUERY)
    assert [g.node.node_id for g in got] == [before[i][0] for i in want]
    assert [g.score for g in got] == pytest.approx([float(scores[i]) for i in want], abs=1e-6)
    for g, i in zip(got, want):
        node_id, ragcun_score, metadata = before[i]
        assert 0.0 <= ragcun_score <= 1.0
        assert g.node.metadata == {**metadata, "retrieval_score": ragcun_score}  # user and hit keys kept
        assert g.node.metadata["topic"] == TOPICS[int(g.node.metadata["n"])]
    # the reranker wrote retrieval_score into the returned nodes only, not into the store's nodes
    assert all("retrieval_score" not in h.node.metadata for h in retriever.retrieve(QUERY))


def test_llamaindex_rerank_top_n_beyond_the_hits_keeps_them_all(li_index, cross_encoder_dir) -> None:
    hits = li_index.as_retriever(similarity_top_k=2).retrieve(QUERY)
    got = SentenceTransformerRerank(model=cross_encoder_dir, top_n=10, device="cpu").postprocess_nodes(hits, query_str=QUERY)
    assert sorted(g.node.node_id for g in got) == sorted(h.node.node_id for h in hits)


@pytest.fixture(scope="module")
def lc_store() -> LCStore:
    metadatas = [{"topic": topic, "n": i} for i, topic in enumerate(TOPICS)]
    return LCStore.from_texts(TEXTS, GaussianEmbeddings(), metadatas, ids=[f"d{i}" for i in range(len(TEXTS))])


@pytest.mark.parametrize("search_kwargs", [{"k": 5}, {"k": 5, "retrieval_mode": "dense"},
                                           {"k": 5, "filter": {"topic": "biology"}}])
def test_langchain_cross_encoder_reranker_takes_the_cross_encoders_order(lc_store, cross_encoder_dir,
                                                                         search_kwargs) -> None:
    base = lc_store.as_retriever(search_kwargs=search_kwargs)
    candidates = base.invoke(QUERY)
    model = HuggingFaceCrossEncoder(model_name=cross_encoder_dir)
    scores = list(model.score([(QUERY, d.page_content) for d in candidates]))
    want = _order(scores)[:3]
    assert want != list(range(3))

    retriever = ContextualCompressionRetriever(base_compressor=CrossEncoderReranker(model=model, top_n=3),
                                               base_retriever=base)
    got = retriever.invoke(QUERY)
    assert [d.id for d in got] == [candidates[i].id for i in want]
    stored = {d.id: d.metadata for d in lc_store.get_by_ids([d.id for d in got])}
    assert all(d.metadata == stored[d.id] for d in got)  # metadata kept as stored; the reranker adds no score
    assert "filter" not in search_kwargs or {d.metadata["topic"] for d in got} == {"biology"}
