"""Store-level calibration through both framework stores: ``calibrate(judgements)`` fits P(relevant) at the
store's distances, scores later hits with it and keeps it through the store's save and load."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = [f"{topic} fact {n}: {topic} is studied by many people in many places." for topic in
         ("tides and the moon", "shakespeare plays", "cell energy and ATP", "volcano eruptions") for n in range(6)]


def _text_judgements(ids: list[str], texts: list[str]) -> list[tuple[str, str, bool]]:
    queries = {"why do tides happen": "tides", "who wrote hamlet": "shakespeare", "how do cells make energy": "cell"}
    return [(q, i, t.startswith(topic)) for q, topic in queries.items() for i, t in zip(ids, texts)]


def test_langchain_store_calibrates_and_keeps_it_through_save(bundled_encoder, tmp_path) -> None:
    from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore

    embeddings = GaussianEmbeddings(encoder=bundled_encoder)
    db = GaussianVectorStore.from_texts(TEXTS, embeddings, ids=[f"t{n}" for n in range(len(TEXTS))])
    cal = db.calibrate(_text_judgements(db.store.ids, TEXTS))
    assert cal != embeddings.relevance_calibrator and db.store.calibrator is cal
    (_, score), = db.similarity_search_with_relevance_scores("why do tides happen", k=1, retrieval_mode="dense")
    (_, dist), = db.similarity_search_with_score("why do tides happen", k=1, retrieval_mode="dense")
    assert score == pytest.approx(float(cal([dist])[0]))
    db.save_local(tmp_path / "lc")
    assert GaussianVectorStore.load_local(tmp_path / "lc", embeddings).store.calibrator == cal


def test_llamaindex_store_calibrates_on_vectors_or_texts_and_keeps_it(bundled_encoder, tmp_path) -> None:
    from llama_index.core.schema import TextNode

    from llama_index.embeddings.ragcun import GaussianEmbedding
    from llama_index.vector_stores.ragcun import GaussianVectorStore

    embed = GaussianEmbedding(encoder=bundled_encoder)
    vectors = embed.get_text_embedding_batch(TEXTS)
    store = GaussianVectorStore()
    store.add([TextNode(id_=f"n{n}", text=t, embedding=v) for n, (t, v) in enumerate(zip(TEXTS, vectors))])
    judged = _text_judgements([f"n{n}" for n in range(len(TEXTS))], TEXTS)
    with pytest.raises(ValueError, match="needs an embedding model"):
        store.calibrate(judged)
    by_text = store.calibrate(judged, embed_model=embed)
    by_vector = store.calibrate([(embed.get_query_embedding(q), d, r) for q, d, r in judged])
    np.testing.assert_allclose([by_text.intercept, by_text.slope], [by_vector.intercept, by_vector.slope], rtol=1e-4)
    assert store.store.calibrator is by_vector
    store.persist(str(tmp_path / "li" / "default__vector_store.json"))
    loaded = GaussianVectorStore.from_persist_path(str(tmp_path / "li" / "default__vector_store.json"))
    assert loaded.store.calibrator == by_vector
