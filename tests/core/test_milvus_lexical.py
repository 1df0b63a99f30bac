"""``MilvusL2Index``'s native BM25 lexical side on real Milvus Lite: ranking, scores, filters, texts, persistence."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason='Milvus tests need the extra: pip install "ragcun[milvus]"')
pytest.importorskip("milvus_lite", reason='Milvus tests need Milvus Lite: pip install "ragcun[milvus]"')

import bm25s  # noqa: E402
import Stemmer  # noqa: E402

from ragcun.index.milvus.index import MilvusL2Index  # noqa: E402
from ragcun.index.milvus.text import MAX_TEXT_BYTES  # noqa: E402
from ragcun.store.doc_store import DocStore, Record  # noqa: E402

DIM = 8
VOCAB = ("cat cats dog dogs running runs runner protein proteins cell cells cancer tumour tumours gene genes "
         "expression expressed mouse mice therapy therapies drug drugs binding binds receptor receptors immune "
         "response responses infection infected virus viruses vaccine vaccines patient patients trial trials").split()
FILLER = "the a of and is in to with on for it this that".split()


def _corpus(n: int = 60, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """``n`` seeded documents of English words with their inflections and stopwords, and 20 queries."""
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(VOCAB + FILLER, size=int(rng.integers(5, 40)))).capitalize() + "."
            for _ in range(n)]
    queries = [" ".join(rng.choice(VOCAB, size=int(rng.integers(1, 4)))) for _ in range(20)]
    return [f"doc-{i}" for i in range(n)], docs, queries


def _vectors(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    """A Milvus Lite index over the corpus, every row with text and metadata ``{"g": i % 2}``."""
    ids, docs, queries = _corpus()
    index = MilvusL2Index(str(tmp_path_factory.mktemp("lexical") / "lexical.db"), dim=DIM)
    index.add(ids, _vectors(len(ids)), metadata=[{"g": i % 2} for i in range(len(ids))], texts=docs)
    yield index, ids, docs, queries
    index.close()


def _bm25s_scores(docs: list[str], queries: list[str]) -> np.ndarray:
    """``bm25s`` (lucene, k1 = 1.5, b = 0.75, English stopwords and stemmer) scores, (queries, docs)."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    return np.stack([retriever.get_scores(t) for t in tokens])


def test_capabilities_and_ordering(corpus_index):
    index, ids, docs, queries = corpus_index
    assert index.capabilities.lexical and index.capabilities.metadata_filter
    found, scores = index.lexical_search("mice immune responses", 10)
    assert 0 < len(found) <= 10 and len(set(found)) == len(found)
    assert scores.dtype == np.float32 and (scores > 0).all() and (np.diff(scores) <= 0).all()
    terms = {"mous", "mice", "immun", "respons"}  # stems: every hit holds one of them
    for doc_id in found:
        words = {Stemmer.Stemmer("english").stemWord(w.strip(".").lower()) for w in docs[ids.index(doc_id)].split()}
        assert words & terms, doc_id


def test_scores_match_bm25s(corpus_index):
    """Same ranking as bm25s, and the same scores up to Milvus's constant (k1 + 1) = 2.5 factor."""
    index, ids, docs, queries = corpus_index
    want = _bm25s_scores(docs, queries)
    top1 = 0
    for q, row in zip(queries, want):
        found, scores = index.lexical_search(q, len(ids))
        assert set(found) == {ids[j] for j in np.flatnonzero(row > 0)}
        np.testing.assert_allclose(scores, 2.5 * row[[ids.index(i) for i in found]], rtol=1e-4)
        top1 += found[0] == ids[int(np.argmax(row))] or np.isclose(row.max(), row[ids.index(found[0])])
    assert top1 == len(queries)


def test_lexical_scores_for_given_ids(corpus_index):
    index, ids, docs, queries = corpus_index
    found, scores = index.lexical_search(queries[0], 5)
    others = [i for i in ids if i not in index.lexical_search(queries[0], len(ids))[0]][:3]
    asked = [*others, *reversed(found), found[0]]
    got = index.lexical_scores(queries[0], asked)
    assert got.dtype == np.float32 and got.shape == (len(asked),)
    np.testing.assert_array_equal(got[:len(others)], 0.0)
    np.testing.assert_allclose(got[len(others):-1], scores[::-1], rtol=1e-6)
    assert got[-1] == got[len(others) + len(found) - 1]
    np.testing.assert_array_equal(index.lexical_scores("the of", found), 0.0)
    with pytest.raises(KeyError, match="nope"):
        index.lexical_scores(queries[0], [found[0], "nope"])
    with pytest.raises(TypeError, match="single string"):
        index.lexical_scores(queries[0], found[0])


def test_filter_is_pushed_down(corpus_index):
    index, ids, docs, queries = corpus_index
    everything = dict(zip(*index.lexical_search(queries[1], len(ids))))
    found, scores = index.lexical_search(queries[1], len(ids), filter={"g": 1})
    assert found and all(int(i.split("-")[1]) % 2 == 1 for i in found)
    assert set(found) == {i for i in everything if int(i.split("-")[1]) % 2 == 1}
    np.testing.assert_allclose(scores, [everything[i] for i in found], rtol=1e-6)
    assert index.lexical_search(queries[1], 3, filter='metadata["g"] == 0')[0][0] in everything


@pytest.mark.parametrize("query", ["", "   ", "the of and", "!!! ...", "a"])
def test_queries_without_terms_give_nothing(corpus_index, query):
    index, ids, _, _ = corpus_index
    found, scores = index.lexical_search(query, 10)
    assert found == [] and scores.shape == (0,) and scores.dtype == np.float32
    np.testing.assert_array_equal(index.lexical_scores(query, ids[:3]), 0.0)


def test_bad_lexical_arguments(corpus_index):
    index, ids, _, _ = corpus_index
    with pytest.raises(TypeError, match="must be a string"):
        index.lexical_search(["cat"], 5)
    for k in (0, 2.5, "3", 16_385):
        with pytest.raises(ValueError, match="k"):
            index.lexical_search("cat", k)


def test_rows_without_text_never_match_and_remove_forgets(tmp_path):
    with MilvusL2Index(str(tmp_path / "texts.db"), dim=DIM) as index:
        index.add(["a", "b", "c", "d"], _vectors(4),
                  texts=["cats chase mice", None, "", "dogs chase cats"])
        index.add(["e"], _vectors(1, seed=2))  # no texts at all
        assert index.count == 5
        found, _ = index.lexical_search("cat chasing", 10)
        assert sorted(found) == ["a", "d"]
        np.testing.assert_array_equal(index.lexical_scores("cat", ["b", "c", "e"]), 0.0)
        assert index.remove(["a"]) == 1
        assert index.lexical_search("cats", 10)[0] == ["d"]
        assert index.lexical_scores("cats", ["d"])[0] > 0
        with pytest.raises(KeyError):
            index.lexical_scores("cats", ["a"])
        index.add(["d"], _vectors(1, seed=3), texts=["birds sing"])  # replacing a row replaces its text
        assert index.lexical_search("cats", 10)[0] == []
        assert index.lexical_search("bird", 10)[0] == ["d"]
        assert index.search(_vectors(1, seed=3), 1)[0][0] == ["d"]


def test_bad_texts_are_refused_whole(tmp_path):
    with MilvusL2Index(str(tmp_path / "bad.db"), dim=DIM) as index:
        index.add(["keep"], _vectors(1), texts=["kept text"])
        long_text = " ".join(f"word{i:06d}" for i in range(MAX_TEXT_BYTES // 8))
        with pytest.raises(ValueError, match=r"'huge'.*UTF-8 bytes.*65535"):
            index.add(["ok", "huge"], _vectors(2), texts=["fine", long_text])
        with pytest.raises(ValueError, match="single string"):
            index.add(["x"], _vectors(1), texts="one text")
        with pytest.raises(ValueError, match="1 ids"):
            index.add(["x"], _vectors(1), texts=["a", "b"])
        with pytest.raises(TypeError, match="'x'.*string or None"):
            index.add(["x"], _vectors(1), texts=[3])
        assert index.count == 1 and index.lexical_search("fine", 5)[0] == []


def test_collection_without_text_opens_without_lexical(tmp_path):
    path = str(tmp_path / "plain.db")
    with MilvusL2Index(path, dim=DIM, lexical=False) as index:
        assert not index.capabilities.lexical
        index.add(["a"], _vectors(1))
        with pytest.raises(ValueError, match="no text field"):
            index.add(["b"], _vectors(1), texts=["text"])
        with pytest.raises(ValueError, match="no text field"):
            index.lexical_search("text", 3)
    with MilvusL2Index(path) as index:  # the collection decides, whatever the default
        assert not index.capabilities.lexical and index.count == 1
    assert MilvusL2Index.capabilities.lexical


def test_milvus_analyzer_params(tmp_path):
    """Explicit analyzer_params store the raw text for Milvus to analyse (Milvus Lite has no stemmer)."""
    path = str(tmp_path / "raw.db")
    analyzer = {"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": ["the"]}]}
    with MilvusL2Index(path, dim=DIM, analyzer_params=analyzer) as index:
        index.add(["a", "b"], _vectors(2), texts=["The cat", "the cats"])
        assert index.lexical_search("cat", 5)[0] == ["a"]
        assert index.lexical_search("the", 5)[0] == []
    with pytest.raises(ValueError, match="analyses texts with"):
        MilvusL2Index(path, analyzer_params={"tokenizer": "standard"})
    with MilvusL2Index(path) as index:
        assert index.lexical_search("cats", 5)[0] == ["b"]


def test_fresh_process_searches_lexically(tmp_path):
    ids, docs, queries = _corpus(30, seed=5)
    path = str(tmp_path / "reopen.db")
    with MilvusL2Index(path, dim=DIM) as index:
        index.add(ids, _vectors(len(ids)), texts=docs)
        index.remove(ids[:2])
        want = [index.lexical_search(q, 5) for q in queries[:5]]
    script = textwrap.dedent(f"""
        import json
        from ragcun.index.milvus.index import MilvusL2Index
        with MilvusL2Index({path!r}) as index:
            out = [index.lexical_search(q, 5) for q in {queries[:5]!r}]
            print(json.dumps({{"lexical": index.capabilities.lexical,
                              "hits": [[ids, scores.tolist()] for ids, scores in out]}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["lexical"]
    for (want_ids, want_scores), (got_ids, got_scores) in zip(want, out["hits"]):
        assert got_ids == want_ids and not set(got_ids) & set(ids[:2])
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)


def test_docstore_hybrid_on_milvus_ranks_as_on_faiss(tmp_path):
    """The same fusion code over Milvus's BM25 and over ragcun's own: same hits, same order, filters too."""
    from ragcun.index.faiss_l2 import L2Index
    from ragcun.store.doc_store import DocStore, Record

    ids, docs, queries = _corpus(80, seed=3)
    vectors, query_vectors = _vectors(len(ids), seed=4), _vectors(len(queries), seed=5)
    records = [Record(i, t, {"g": n % 2}) for n, (i, t) in enumerate(zip(ids, docs))]
    faiss_store, milvus_store = DocStore(L2Index()), DocStore(MilvusL2Index(str(tmp_path / "h.db")))
    assert milvus_store.lexical is None and faiss_store.lexical is not None
    for store in (faiss_store, milvus_store):
        store.add(records, vectors)
        store.delete(ids[:5])
    try:
        for text, qv in zip(queries, query_vectors):
            for kwargs in ({}, {"filter": {"g": 1}}):
                want = faiss_store.search(qv, 10, text=text, mode="hybrid", **kwargs)
                got = milvus_store.search(qv, 10, text=text, mode="hybrid", **kwargs)
                assert [h.record.id for h in got] == [h.record.id for h in want]
                np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
        assert not {h.record.id for h in milvus_store.search(None, 80, text="cat dog protein", mode="lexical")} & set(ids[:5])
    finally:
        milvus_store.index.close()



def test_distances_match_search_and_a_hybrid_store_query_asks_for_them_once(corpus_index, tmp_path):
    """``distances`` agrees with the index's search; a hybrid DocStore query on Milvus searches once and
    computes the lexical-only candidates' distances in one ``distances`` call."""
    index, ids, docs, queries = corpus_index
    q = _vectors(1, seed=9)
    found, dist = index.search(q, 5)
    np.testing.assert_allclose(index.distances(q[0], found[0]), dist[0], rtol=1e-5)
    with pytest.raises(KeyError, match="unknown"):
        index.distances(q[0], [found[0][0], "nope"])
    calls: list[str] = []

    class Counting(MilvusL2Index):
        def search(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append("search")
            return super().search(*args, **kwargs)

        def distances(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append("distances")
            return super().distances(*args, **kwargs)

    store = DocStore(Counting(str(tmp_path / "hybrid.db"), dim=DIM))
    store.add([Record(i, t) for i, t in zip(ids, docs)], _vectors(len(ids)))
    store.search(q[0], 1)  # fits the distance law once
    calls.clear()
    hits = store.search(q[0], 5, text=queries[0], mode="hybrid", candidates=10)
    assert hits and all(h.bm25_score is not None and np.isfinite(h.distance) for h in hits)
    assert calls.count("search") == 1 and calls.count("distances") <= 1
