"""``ragcun.index.lexical.bm25``: BM25 scores equal bm25s's, updates are visible at once, saves round-trip."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest
import Stemmer

from ragcun.index.lexical import Analyzer, BM25Index
from ragcun.index.lexical.analyzer import STOPWORD_LISTS

WORDS = ("gaussian embedding retrieval protein cells mice cancer vaccine virus gene expression "
         "distance isotropic vector index lexical search fusion running runs ran quickly").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + " the and of" for _ in range(n)]


def reference_scores(texts: list[str], query: str) -> np.ndarray:
    stem = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    model.index(bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([query], stopwords="en", stemmer=stem, show_progress=False, return_ids=False)[0]
    return model.get_scores([t for t in tokens if t in model.vocab_dict] or [0])


@pytest.mark.parametrize("query", ["gaussian retrieval", "running mice mice", "cancer vaccine gene the"])
def test_scores_equal_bm25s_after_incremental_adds(query):
    texts = corpus(300)
    ids = [f"d{i}" for i in range(len(texts))]
    index = BM25Index()
    for start in range(0, len(texts), 37):  # many segments, merged along the way
        index.add(ids[start:start + 37], texts[start:start + 37])
    np.testing.assert_allclose(index.scores(query, ids), reference_scores(texts, query), rtol=1e-5, atol=1e-6)


def test_upsert_and_delete_are_visible_to_the_next_query():
    texts = corpus(120, seed=1)
    ids = [f"d{i}" for i in range(len(texts))]
    index = BM25Index()
    index.add(ids, texts)
    index.add(["d5"], ["zebra zebra"])           # upsert replaces the old text
    index.remove(["d7", "d9"])                   # deletes
    kept = [(i, t) for i, t in zip(ids, texts) if i not in ("d7", "d9")]
    kept = [(i, "zebra zebra" if i == "d5" else t) for i, t in kept]
    got = index.scores("zebra protein", [i for i, _ in kept])
    np.testing.assert_allclose(got, reference_scores([t for _, t in kept], "zebra protein"), rtol=1e-5, atol=1e-6)
    assert index.search("zebra", 5)[0] == ["d5"]
    assert "d7" not in index.search("protein cells", 200)[0]
    assert index.count == 118


def test_search_orders_by_score_and_respects_allowed():
    index = BM25Index()
    index.add(["a", "b", "c"], ["apple apple apple banana", "apple banana banana", "cherry"])
    ids, scores = index.search("apple", 10)
    assert ids == ["a", "b"] and scores[0] > scores[1] > 0
    assert index.search("apple", 10, allowed=lambda i: i != "a")[0] == ["b"]
    assert index.search("durian", 10)[0] == []


def test_texts_without_terms_are_not_indexed_and_score_zero():
    index = BM25Index()
    index.add(["empty", "stop", "real"], ["", "the and of", "real words here"])
    assert index.count == 1 and "empty" not in index
    np.testing.assert_array_equal(index.scores("words", ["empty", "stop", "real", "unknown"])[:2], [0.0, 0.0])
    assert index.query_terms("the of and") == []


def test_analyzer_languages_and_errors():
    german = Analyzer("german", "de")
    assert german("Die Häuser und der Hund") == german("Haus Hunde") or german("Die Häuser")[0] == "haus"
    assert Analyzer(None, None)("Running THE dogs") == ["running", "the", "dogs"]
    with pytest.raises(ValueError, match="no stemmer"):
        Analyzer("klingon")
    with pytest.raises(ValueError, match="stop word"):
        Analyzer("english", "klingon")
    with pytest.raises(ValueError, match="k1"):
        BM25Index(k1=0)


def test_save_load_round_trip(tmp_path):
    texts = corpus(200, seed=2)
    ids = [f"d{i}" for i in range(len(texts))]
    index = BM25Index(Analyzer("english", ["protein"]), k1=1.2, b=0.5)
    index.add(ids, texts)
    index.remove(ids[:50])
    index.save(tmp_path / "lex")
    loaded = BM25Index.load(tmp_path / "lex")
    assert loaded.k1 == 1.2 and loaded.b == 0.5 and loaded.analyzer.to_dict() == index.analyzer.to_dict()
    for query in ("gaussian mice", "protein cells", "virus"):
        np.testing.assert_allclose(loaded.scores(query, ids), index.scores(query, ids), rtol=1e-6)
    loaded.add(["new"], ["virus virus virus"])
    assert loaded.search("virus", 1)[0] == ["new"]


def test_bad_input_is_refused():
    index = BM25Index()
    with pytest.raises(TypeError, match="single string"):
        index.add("abc", ["x"])
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        index.add(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="positive int"):
        index.search("x", 0)
    with pytest.raises(ValueError, match="must be a string"):
        index.query_terms(None)  # type: ignore[arg-type]


def test_adds_are_queued_and_indexed_together_by_the_next_read():
    index = BM25Index()
    index.add(["a"], ["apple pie"])
    index.add(["old"], ["zebra crossing"])
    for i in range(50):  # many small adds, as a LangChain add_texts per document does
        index.add([f"d{i}"], [f"banana {i}"])
    assert index._segments == [] and len(index._pending) == 52  # nothing analysed yet
    index.add(["old"], ["quince"])  # an upsert of a queued text replaces it
    index.remove(["a"])             # a delete of a queued text drops it
    assert index.search("zebra", 5)[0] == [] and index.search("apple", 5)[0] == []
    assert index.search("quince", 5)[0] == ["old"]
    assert len(index._segments) == 1 and index.count == 51
    index.add(["old"], ["walnut"])  # an upsert of an indexed text hides the old one at once
    assert index.scores("quince", ["old"])[0] == 0.0


def test_clear_empties_the_index_and_it_stays_usable():
    index = BM25Index()
    index.add(["a", "b"], ["apple", "banana"])
    assert index.search("apple", 5)[0] == ["a"]
    index.clear()
    assert index.count == 0 and index.search("apple", 5)[0] == []
    index.add(["c"], ["apple cherry"])
    assert index.search("apple", 5)[0] == ["c"]


@pytest.mark.parametrize("name", sorted(STOPWORD_LISTS))
def test_analyzer_stop_words_are_those_bm25s_tokenize_drops(name):
    words = list(STOPWORD_LISTS[name])
    text = " ".join([*words, "zzyzx", "qwerty"])
    expected = bm25s.tokenize([text], stopwords=name, stemmer=None, show_progress=False, return_ids=False)[0]
    assert Analyzer(None, name)(text) == expected
    assert Analyzer(None, name)(text)[-2:] == ["zzyzx", "qwerty"] and len(Analyzer(None, None)(text)) > 2


def test_analyzer_stop_words_from_a_list_and_clear_errors():
    assert Analyzer(None, {"apple", "pear"})("apple pie and pear") == ["pie", "and"]
    assert Analyzer(None, ("and",)).stopwords == ["and"]
    with pytest.raises(ValueError, match=r"unknown stop word list 'xx'.*'de'"):
        Analyzer(None, "xx")
    for bad in (True, [1, 2]):
        with pytest.raises(ValueError, match="stopwords must be"):
            Analyzer(None, bad)
