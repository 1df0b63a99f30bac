"""Calibrated relevance scores through both frameworks: the README's 20-document example, run as written."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from repo_paths import REPO_ROOT

MARK = "<!-- relevance-example -->"


def _readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert MARK in readme, "the README lost its relevance-score example"
    return readme.split(MARK, 1)[1].split("```python", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def example(bundled_encoder) -> dict:
    """The README example's namespace after running it (its store, texts) and what it printed."""
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_example(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    namespace["printed"] = out.getvalue()
    return namespace


def test_readme_example_off_topic_queries_keep_nothing_above_one_half(example) -> None:
    db, texts = example["db"], example["texts"]
    assert len(texts) == 20 and db.store.calibrator is not None  # GaussianEmbeddings() carries the bundled one
    for query in ("How do I fix a flat bicycle tyre?", "best chocolate cake recipe", "how do I reset my router password"):
        for mode in ("hybrid", "dense"):
            scores = [s for _, s in db.similarity_search_with_relevance_scores(query, k=20, retrieval_mode=mode)]
            assert len(scores) == 20 and max(scores) < 0.5, (query, mode, max(scores))
    printed = example["printed"].splitlines()
    assert printed[-1] == "0 results above 0.1 for the off-topic query"


def test_readme_example_on_topic_queries_rank_and_outscore_off_topic_ones(example) -> None:
    db = example["db"]
    off_topic = max(s for q in ("How do I fix a flat bicycle tyre?", "best chocolate cake recipe")
                    for _, s in db.similarity_search_with_relevance_scores(q, k=20))
    for query, answer in (("When was the Eiffel Tower built?", "Eiffel"), ("Which hormone lowers blood sugar?", "Insulin")):
        doc, score = db.similarity_search_with_relevance_scores(query, k=1)[0]
        assert answer in doc.page_content and score > 0.1 > off_topic


def test_scores_are_the_calibrated_probability_in_langchain_and_llamaindex(bundled_encoder, example) -> None:
    """Dense hits: P(relevant) of the distance; hybrid hits (the stores' default): of the distance and BM25 share."""
    from llama_index.core import Document, StorageContext, VectorStoreIndex

    from llama_index.embeddings.ragcun import GaussianEmbedding
    from llama_index.vector_stores.ragcun import GaussianVectorStore

    calibrator, query = bundled_encoder.relevance_calibrator, "Which hormone lowers blood sugar?"
    assert calibrator.hybrid is not None
    db = example["db"]
    pairs = db.similarity_search_with_score(query, k=5, retrieval_mode="dense")
    scored = db.similarity_search_with_relevance_scores(query, k=5, retrieval_mode="dense")
    np.testing.assert_allclose([s for _, s in scored], calibrator(np.array([d for _, d in pairs])), rtol=1e-6)
    vector = np.asarray(bundled_encoder.encode_query([query], convert_to_numpy=True)[0], dtype=np.float32)
    hits = db.store.search(vector, 5, text=query, mode="hybrid")
    expected = calibrator([h.distance for h in hits], [h.bm25_share for h in hits])
    np.testing.assert_allclose([s for _, s in db.similarity_search_with_relevance_scores(query, k=5)], expected, rtol=1e-5)

    embed_model = GaussianEmbedding(encoder=bundled_encoder)
    store = GaussianVectorStore(calibrator=embed_model)
    assert store.store.calibrator == calibrator
    index = VectorStoreIndex.from_documents([Document(text=t) for t in example["texts"]], embed_model=embed_model,
                                            storage_context=StorageContext.from_defaults(vector_store=store))
    nodes = index.as_retriever(similarity_top_k=3).retrieve(query)
    assert "Insulin" in nodes[0].node.text
    hits = store.store.search(vector, 3, text=query, mode="hybrid")
    np.testing.assert_allclose([n.node.metadata["l2_distance"] for n in nodes], [h.distance for h in hits], rtol=1e-5)
    np.testing.assert_allclose([n.score for n in nodes],
                               calibrator([h.distance for h in hits], [h.bm25_share for h in hits]), rtol=1e-5)
    assert GaussianVectorStore().store.calibrator is None  # no model given: the distance law, as before
    assert GaussianVectorStore(calibrator=embed_model, score_mode="auto").store.calibrator is None
