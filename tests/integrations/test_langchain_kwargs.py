"""The LangChain store honours FAISS's keyword arguments and refuses the rest; ``delete`` takes filters.

``score_threshold`` on ``similarity_search_with_score`` (and ``similarity_search``) is the largest
Euclidean distance kept, in every retrieval mode; ``fetch_k`` is checked; a keyword a method does
not take is a ``TypeError`` naming it; ``delete(filter=...)`` deletes what the same filter finds,
and a call that errors deletes (or adds) nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ragcun import GaussianVectorStore

TEXTS = ["red apples and pears", "green pears", "blue sky over the sea", "red wine from France",
         "the deep blue sea", "apples, pears and plums"]
METAS = [{"page": i % 3, "colour": c} for i, c in enumerate(["red", "green", "blue", "red", "blue", None])]
IDS = [f"t{i}" for i in range(len(TEXTS))]


@pytest.fixture()
def db() -> GaussianVectorStore:
    return GaussianVectorStore.from_texts(TEXTS, DeterministicFakeEmbedding(size=16), METAS, ids=IDS)


def test_score_threshold_keeps_distances_up_to_it_in_every_mode(db: GaussianVectorStore) -> None:
    for mode in ("dense", "hybrid", "sparse"):
        everything = db.similarity_search_with_score("red apples", k=6, retrieval_mode=mode)
        distances = sorted(d for _, d in everything)
        limit = distances[(len(distances) - 1) // 2]
        kept = db.similarity_search_with_score("red apples", k=6, retrieval_mode=mode, score_threshold=limit)
        assert [doc.id for doc, _ in kept] == [doc.id for doc, d in everything if d <= limit]
        assert 1 <= len(kept) < len(everything)
        docs = db.similarity_search("red apples", k=6, retrieval_mode=mode, score_threshold=limit)
        assert [d.id for d in docs] == [doc.id for doc, _ in kept]
    q = db.embeddings.embed_query("red apples")
    nearest = db.similarity_search_with_score_by_vector(q, k=6)
    kept = db.similarity_search_with_score_by_vector(q, k=6, score_threshold=nearest[1][1])
    assert [d.id for d, _ in kept] == [d.id for d, _ in nearest[:2]]
    assert [d.id for d in db.similarity_search_by_vector(q, k=6, score_threshold=nearest[1][1])] == \
        [d.id for d, _ in nearest[:2]]
    assert db.similarity_search_with_score("red apples", k=6, score_threshold=0.0) == []


def test_relevance_scores_keep_langchains_threshold_on_the_score(db: GaussianVectorStore) -> None:
    scored = db.similarity_search_with_relevance_scores("red apples", k=6, retrieval_mode="dense")
    cut = scored[2][1]
    kept = db.similarity_search_with_relevance_scores("red apples", k=6, retrieval_mode="dense", score_threshold=cut)
    assert [d.id for d, _ in kept] == [d.id for d, s in scored if s >= cut]


@pytest.mark.parametrize(("value", "error", "match"), [
    ("0.5", TypeError, "score_threshold must be a number; got str '0.5'"),
    (True, TypeError, "score_threshold must be a number; got bool"),
    ([1.0], TypeError, "score_threshold must be a number; got list"),
    (float("nan"), ValueError, "score_threshold must be a number; got nan"),
])
def test_a_threshold_that_is_not_a_number_is_refused_naming_it(db: GaussianVectorStore, value: Any,
                                                                error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        db.similarity_search_with_score("red", k=2, score_threshold=value)
    with pytest.raises(error, match=match):
        db.similarity_search_by_vector(db.embeddings.embed_query("red"), k=2, score_threshold=value)


@pytest.mark.parametrize("fetch_k", [0, -1, 2.5, "20", True])
def test_a_bad_fetch_k_is_refused_naming_it(db: GaussianVectorStore, fetch_k: Any) -> None:
    with pytest.raises(ValueError, match="fetch_k must be a positive int"):
        db.similarity_search("red", k=2, filter={"page": 0}, fetch_k=fetch_k)
    with pytest.raises(ValueError, match="fetch_k must be a positive int"):
        db.similarity_search_with_score_by_vector(db.embeddings.embed_query("red"), k=2, fetch_k=fetch_k)


def test_fetch_k_is_taken_by_every_search_and_by_the_retriever(db: GaussianVectorStore) -> None:
    spec = {"colour": "red"}
    want = [d.id for d in db.similarity_search("red apples", k=2, filter=spec)]
    assert [d.id for d in db.similarity_search("red apples", k=2, filter=spec, fetch_k=1)] == want
    retriever = db.as_retriever(search_kwargs={"k": 2, "fetch_k": 1, "filter": spec})
    assert [d.id for d in retriever.invoke("red apples")] == want


def _calls(db: GaussianVectorStore) -> list[tuple[str, Any]]:
    q = db.embeddings.embed_query("red")
    return [
        ("similarity_search", lambda **kw: db.similarity_search("red", **kw)),
        ("similarity_search_with_score", lambda **kw: db.similarity_search_with_score("red", **kw)),
        ("similarity_search_by_vector", lambda **kw: db.similarity_search_by_vector(q, **kw)),
        ("similarity_search_with_score_by_vector", lambda **kw: db.similarity_search_with_score_by_vector(q, **kw)),
        ("similarity_search_with_relevance_scores",
         lambda **kw: db.similarity_search_with_relevance_scores("red", **kw)),
        ("max_marginal_relevance_search", lambda **kw: db.max_marginal_relevance_search("red", **kw)),
        ("max_marginal_relevance_search_by_vector", lambda **kw: db.max_marginal_relevance_search_by_vector(q, **kw)),
        ("add_texts", lambda **kw: db.add_texts(["new text"], **kw)),
        ("add_embeddings", lambda **kw: db.add_embeddings([("new text", q)], **kw)),
        ("delete", lambda **kw: db.delete(["t0"], **kw)),
    ]


def test_a_keyword_a_method_does_not_take_is_a_type_error_naming_it(db: GaussianVectorStore) -> None:
    for method, call in _calls(db):
        with pytest.raises(TypeError, match=rf"GaussianVectorStore\.{method}\(\) got unexpected keyword "
                                            r"argument\(s\) scor_threshold"):
            call(scor_threshold=0.5)
    with pytest.raises(TypeError, match=r"max_marginal_relevance_search\(\) got unexpected .* score_threshold"):
        db.max_marginal_relevance_search("red", k=2, score_threshold=1.0)  # MMR has no threshold
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) bogus"):
        db.as_retriever(search_kwargs={"k": 2, "bogus": 1}).invoke("red")
    assert sorted(db.store.ids) == IDS  # nothing was added or deleted


@pytest.mark.asyncio
async def test_async_methods_refuse_unknown_keywords_too(db: GaussianVectorStore) -> None:
    with pytest.raises(TypeError, match=r"similarity_search\(\) got unexpected keyword argument\(s\) bogus"):
        await db.asimilarity_search("red", k=2, bogus=1)
    with pytest.raises(TypeError, match=r"delete\(\) got unexpected keyword argument\(s\) bogus"):
        await db.adelete(["t0"], bogus=1)
    await db.adelete(filter={"colour": "green"})
    assert "t1" not in db.store


def test_delete_by_filter_deletes_what_the_same_filter_finds(db: GaussianVectorStore) -> None:
    spec = {"$or": [{"page": [1, 2]}, {"colour": None}]}
    found = {d.id for d in db.similarity_search("anything", k=6, filter=spec, retrieval_mode="dense")}
    assert found == {"t1", "t2", "t4", "t5"}
    assert db.delete(filter=spec) is True
    assert sorted(db.store.ids) == ["t0", "t3"] and db.store.index.count == 2
    assert db.similarity_search("green pears", k=6, retrieval_mode="sparse")[0].id in {"t0", "t3"}
    db.delete(filter={"colour": "purple"})
    assert db.store.ids == ["t0", "t3"]
    db.delete(filter=lambda md: md["colour"] == "red" and md["page"] == 0)  # FAISS's callable form
    assert db.store.ids == [] and db.store.index.count == 0


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"ids": ["t0"], "filter": {"page": 0}}, ValueError, "delete takes ids or filter, not both; got ids and filter"),
    ({"filter": {"page": {"$near": 0}}}, ValueError, "unknown filter operator"),
    ({"filter": "page = 0"}, TypeError, "filter must be a dict, a callable or None"),
    ({"filter": lambda md: md["page"] < 2 and md["missing"]}, KeyError, "missing"),
    ({"filter": lambda doc: doc.metadata["page"] == 0}, TypeError, "called with a document's metadata dict"),
])
def test_a_delete_that_errors_deletes_nothing(db: GaussianVectorStore, kwargs: dict[str, Any],
                                              error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        db.delete(**kwargs)
    assert db.store.ids == IDS and db.store.index.count == len(IDS)


def test_metadata_json_cannot_keep_is_refused_naming_the_key_and_nothing_is_added(db: GaussianVectorStore) -> None:
    with pytest.raises(ValueError, match=r"record 'bad': metadata key 'o' holds an object, which JSON cannot store"):
        db.add_texts(["fine", "not fine"], [{"ok": 1}, {"x": 1, "o": object()}], ids=["good", "bad"])
    with pytest.raises(ValueError, match=r"record 'n': metadata key 'deep' holds a set at \['a'\]\[0\]"):
        db.add_texts(["nested"], [{"deep": {"a": [{1, 2}]}}], ids=["n"])
    assert db.store.ids == IDS and db.store.index.count == len(IDS)
    assert np.isfinite(db.similarity_search_with_score("fine", k=1)[0][1])
