"""LangChain adapters: the langchain-tests standard suites, plus retrievers on the real bundled model."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests.embeddings import EmbeddingsIntegrationTests
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests
from langchain_tests.unit_tests.embeddings import EmbeddingsUnitTests

from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore
from ragcun.index.faiss_l2 import L2Index
from ragcun.io.saves import SaveFormatError

TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Python is a popular programming language for data science.",
    "The Great Barrier Reef is the world's largest coral reef system.",
    "Mitochondria are the powerhouse of the cell and produce ATP.",
    "Rust is a systems programming language focused on memory safety.",
]
METAS = [{"topic": t, "n": i} for i, t in enumerate(["travel", "biology", "code", "travel", "biology", "code"])]


# The suites' async tests are plain ``async def``; the project runs pytest-asyncio in strict mode and the
# suites forbid overriding tests, so the whole class is marked and the resulting notice on sync tests muted.
_ASYNC_SUITE = [pytest.mark.asyncio,
                pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning")]


class TestGaussianEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[GaussianEmbeddings]:
        return GaussianEmbeddings


class TestGaussianEmbeddingsIntegration(EmbeddingsIntegrationTests):
    pytestmark = _ASYNC_SUITE

    @property
    def embeddings_class(self) -> type[GaussianEmbeddings]:
        return GaussianEmbeddings


class TestGaussianVectorStoreStandard(VectorStoreIntegrationTests):
    pytestmark = _ASYNC_SUITE

    @pytest.fixture()
    def vectorstore(self) -> Generator[GaussianVectorStore, None, None]:  # type: ignore[override]
        yield GaussianVectorStore(self.get_embeddings())


@pytest.fixture(scope="module")
def embeddings() -> GaussianEmbeddings:
    return GaussianEmbeddings()


@pytest.fixture(scope="module")
def db(embeddings: GaussianEmbeddings) -> GaussianVectorStore:
    return GaussianVectorStore.from_texts(TEXTS, embeddings, METAS, ids=[f"t{i}" for i in range(len(TEXTS))])


def test_embeddings_are_unnormalised_and_reject_bad_text(embeddings: GaussianEmbeddings) -> None:
    q = np.array(embeddings.embed_query("iron tower in Paris"))
    assert q.shape == (embeddings.dimension,) and abs(np.linalg.norm(q) - 1.0) > 1.0
    with pytest.raises(ValueError, match="empty"):
        embeddings.embed_documents(["fine", ""])
    with pytest.raises(ValueError, match="None"):
        embeddings.embed_query(None)  # type: ignore[arg-type]
    prefixed = GaussianEmbeddings(query_instruction="query: ")
    np.testing.assert_allclose(prefixed.embed_query("x"), embeddings.embed_query("query: x"), rtol=1e-4, atol=1e-4)


def test_similarity_search_scores_and_distances(db: GaussianVectorStore) -> None:
    assert db.similarity_search("coral reefs", k=1)[0].id == "t3"
    with_dist = db.similarity_search_with_score("memory safe systems language", k=3)
    assert with_dist[0][0].id == "t5"
    assert [d for _, d in with_dist] == sorted(d for _, d in with_dist) and with_dist[0][1] > 1.0
    rel = db.similarity_search_with_relevance_scores("memory safe systems language", k=3)
    assert [d.id for d, _ in rel] == [d.id for d, _ in with_dist]
    assert all(0.0 <= s <= 1.0 for _, s in rel) and [s for _, s in rel] == sorted((s for _, s in rel), reverse=True)
    fn = db._select_relevance_score_fn()  # a dense hit's score as a function of its distance
    dense = db.similarity_search_with_relevance_scores("memory safe systems language", k=3, retrieval_mode="dense")
    dense_dist = db.similarity_search_with_score("memory safe systems language", k=3, retrieval_mode="dense")
    assert [fn(d) for _, d in dense_dist] == pytest.approx([s for _, s in dense])
    # a hybrid hit's P(relevant) reads its BM25 share too (the bundled calibrator's hybrid terms)
    hits = db.store.search(np.asarray(db.embeddings.embed_query("memory safe systems language"), dtype=np.float32), 3,
                           text="memory safe systems language", mode="hybrid")
    assert [h.relevance for h in hits] == pytest.approx([s for _, s in rel])
    assert rel[0][1] != pytest.approx(fn(with_dist[0][1]))
    vec = db.embeddings.embed_query("coral reefs")
    assert db.similarity_search_by_vector(vec, k=1)[0].id == "t3"


def test_filters_dict_and_callable(db: GaussianVectorStore) -> None:
    docs = db.similarity_search("programming", k=4, filter={"topic": "biology"})
    assert {d.id for d in docs} == {"t1", "t4"}
    docs = db.similarity_search("programming", k=4, filter={"$or": [{"n": {"$lt": 1}}, {"n": {"$gt": 4}}]})
    assert {d.id for d in docs} == {"t0", "t5"}
    docs = db.similarity_search("programming", k=4, filter=lambda md: md["topic"] == "code")  # FAISS's form
    assert {d.id for d in docs} == {"t2", "t5"}
    with pytest.raises(TypeError, match="called with a document's metadata dict, as LangChain's FAISS store"):
        db.similarity_search("programming", k=4, filter=lambda d: "language" in d.page_content)
    with pytest.raises(ValueError, match="unknown filter operator"):
        db.similarity_search("x", filter={"n": {"$near": 1}})


def test_retrievers_similarity_mmr_and_threshold(db: GaussianVectorStore) -> None:
    assert db.as_retriever(search_kwargs={"k": 1}).invoke("coral reefs")[0].id == "t3"
    mmr = db.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 6, "lambda_mult": 0.3})
    picked = mmr.invoke("programming languages")
    assert len(picked) == 2 and picked[0].id in {"t2", "t5"}
    best = db.similarity_search_with_relevance_scores("programming languages", k=6)
    cut = (best[1][1] + best[2][1]) / 2
    thr = db.as_retriever(search_type="similarity_score_threshold",
                          search_kwargs={"k": 6, "score_threshold": cut}).invoke("programming languages")
    assert [d.id for d in thr] == [d.id for d, _ in best[:2]]
    assert db.as_retriever(search_type="similarity_score_threshold",
                           search_kwargs={"score_threshold": 1.01}).invoke("programming") == []


def test_mmr_prefers_diversity_over_duplicates() -> None:
    emb = DeterministicFakeEmbedding(size=16)
    db = GaussianVectorStore(emb)
    db.add_texts(["a", "b", "c"], ids=["a", "b", "c"])
    vec = np.array(emb.embed_query("a"))
    db.store.add([type(db.store.get(["a"])[0])("a2", "a copy")], (vec + 1e-3)[None])
    plain = [d.id for d in db.similarity_search_by_vector(vec.tolist(), k=2)]
    diverse = [d.id for d in db.max_marginal_relevance_search_by_vector(vec.tolist(), k=2, fetch_k=4, lambda_mult=0.2)]
    assert set(plain) == {"a", "a2"} and diverse[0] in plain and diverse[1] not in plain


def test_save_load_without_dangerous_flag_and_errors(db: GaussianVectorStore, embeddings, tmp_path) -> None:
    db.save_local(tmp_path / "lc")
    again = GaussianVectorStore.load_local(tmp_path / "lc", embeddings)
    q = "plants and light"
    assert again.similarity_search_with_relevance_scores(q, k=3) == db.similarity_search_with_relevance_scores(q, k=3)
    assert again.get_by_ids(["t0"]) == db.get_by_ids(["t0"]) and again.get_by_ids(["t0"])[0].metadata == METAS[0]
    (tmp_path / "lc" / "index" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(SaveFormatError, match="index.faiss"):
        GaussianVectorStore.load_local(tmp_path / "lc", embeddings)
    with pytest.raises(ValueError, match="2 metadatas for 1 texts"):
        db.add_texts(["x"], [{}, {}])
    with pytest.raises(ValueError, match="empty"):
        db.add_texts(["  "])
    with pytest.raises(ValueError, match="dimension"):
        GaussianVectorStore(DeterministicFakeEmbedding(size=8), store=db.store).similarity_search("x")


def test_wraps_given_index_delete_all_and_async(embeddings) -> None:
    index = L2Index(factory="HNSW16")
    db = GaussianVectorStore.from_documents([Document(page_content=t, metadata=m) for t, m in zip(TEXTS, METAS)],
                                            embeddings, index=index)
    assert index.count == len(TEXTS) and db.store.index is index
    hits = asyncio.run(db.asimilarity_search("coral reefs", k=1))
    assert hits[0].page_content == TEXTS[3]
    asyncio.run(db.adelete([hits[0].id]))
    assert db.get_by_ids([hits[0].id]) == [] and index.count == len(TEXTS) - 1
    db.delete()
    assert db.similarity_search("coral reefs") == [] and index.count == 0


def test_relevance_scores_stay_in_unit_interval_where_langchain_euclidean_goes_negative(db) -> None:
    pairs = db.similarity_search_with_score("a question about nothing in particular", k=6)
    naive = [GaussianVectorStore._euclidean_relevance_score_fn(d) for _, d in pairs]
    assert min(naive) < 0
    scores: list[Any] = [s for _, s in db.similarity_search_with_relevance_scores(
        "a question about nothing in particular", k=6)]
    assert all(0.0 <= s <= 1.0 for s in scores)
