"""Hybrid retrieval in ``DocStore``: modes, fusion, fallbacks, filters and persistence of the lexical side."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import fuse, minmax
from ragcun.store.modes import RetrievalMode

TEXTS = {
    "cat": "the cat sat on the mat with another cat",
    "dog": "a dog chased the cat",
    "fish": "fish swim in the ocean",
    "quasar": "quasar spectra redshift measurements",
    "bare": "",
}


def make_store(seed: int = 0) -> tuple[DocStore, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    vecs = {i: rng.normal(size=8).astype(np.float32) for i in TEXTS}
    store = DocStore()
    store.add([Record(i, t, {"kind": "animal" if i in ("cat", "dog", "fish") else "other"}) for i, t in TEXTS.items()],
              np.stack([vecs[i] for i in TEXTS]))
    return store, vecs


def test_minmax_and_fuse():
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(minmax(np.array([5.0, 5.0])), [1.0, 1.0])
    fused = fuse(np.array([0.0, 1.0]), np.array([0.0, 3.0]), 0.7)
    np.testing.assert_allclose(fused, [0.7, 0.3])
    assert ((fused >= 0) & (fused <= 1)).all()


def test_lexical_mode_ranks_by_bm25_and_hybrid_blends():
    store, vecs = make_store()
    near_quasar = vecs["quasar"] + 0.01
    lexical = store.search(None, 3, text="cat", mode="sparse")
    assert [h.record.id for h in lexical] == ["cat", "dog"]
    assert all(h.mode == "sparse" and h.bm25_score > 0 and np.isnan(h.distance) for h in lexical)
    assert all(h.law_score is None and h.relevance is None and h.score == h.fused_score for h in lexical)
    alias = store.search(None, 3, text="cat", mode="lexical")  # the older word for sparse
    assert [(h.record.id, h.mode, h.score) for h in alias] == [(h.record.id, RetrievalMode.SPARSE, h.score) for h in lexical]
    dense_first = store.search(near_quasar, 5, text="cat", mode="hybrid", alpha=1.0)
    assert dense_first[0].record.id == "quasar"
    lexical_first = store.search(near_quasar, 5, text="cat", mode="hybrid", alpha=0.0)
    assert lexical_first[0].record.id == "cat"
    hits = store.search(near_quasar, 5, text="cat", mode="hybrid", alpha=0.7)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:  # exact distances and BM25 scores travel with each hit
        assert h.distance == pytest.approx(float(np.linalg.norm(vecs[h.record.id] - near_quasar)), rel=1e-5)
        assert h.bm25_score == pytest.approx(float(store.lexical.scores("cat", [h.record.id])[0]), rel=1e-6)


def test_query_without_lexical_terms_falls_back_to_dense_and_says_so():
    store, vecs = make_store()
    for text in ("the of and", "!!", "a"):  # stop words only, punctuation, a one-letter word
        hits = store.search(vecs["fish"], 2, text=text, mode="hybrid")
        assert hits[0].record.id == "fish" and hits[0].mode == "dense"
        assert hits[0].fallback == "no lexical terms in the query"
    for text in ("zebra", "квазар"):  # terms no document has, in any script
        assert store.search(vecs["fish"], 2, text=text, mode="hybrid")[0].fallback == "no lexical match"


def test_bad_mode_alpha_and_missing_text_are_clear_errors():
    store, vecs = make_store()
    with pytest.raises(ValueError, match="alpha"):
        store.search(vecs["cat"], 2, text="cat", mode="hybrid", alpha=1.5)
    with pytest.raises(ValueError, match="retrieval mode"):
        store.search(vecs["cat"], 2, text="cat", mode="bm25")
    with pytest.raises(ValueError, match="needs the query text"):
        store.search(vecs["cat"], 2, mode="hybrid")
    with pytest.raises(ValueError, match="needs a query vector"):
        store.search(None, 2, text="cat", mode="hybrid")
    textless = DocStore()
    textless.add([Record("a", ""), Record("b", "")], np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="needs stored texts"):
        textless.search(None, 1, text="cat", mode="lexical")
    assert textless.search(np.eye(2)[0], 1, text="cat", mode="hybrid")[0].fallback == "no stored texts to search"


def test_filters_apply_to_both_sides():
    store, vecs = make_store()
    hits = store.search(vecs["quasar"], 5, text="cat", mode="hybrid", filter={"kind": "animal"})
    assert {h.record.id for h in hits} <= {"cat", "dog", "fish"}
    hits = store.search(None, 5, text="cat quasar", mode="lexical", where=lambda r: r.id != "cat")
    assert [h.record.id for h in hits] == ["quasar", "dog"]


def test_delete_and_upsert_reach_the_lexical_side():
    store, vecs = make_store()
    store.delete(["cat"])
    assert [h.record.id for h in store.search(None, 5, text="cat", mode="lexical")] == ["dog"]
    store.add([Record("dog", "quasar quasar")], vecs["dog"][None])
    assert [h.record.id for h in store.search(None, 5, text="cat", mode="lexical")] == []
    assert store.search(None, 1, text="quasar", mode="lexical")[0].record.id == "dog"


def test_save_kill_load_keeps_lexical_in_step(tmp_path):
    """A saver killed mid-run leaves the last complete save, whose lexical side matches its vectors."""
    store, vecs = make_store()
    store.save(tmp_path / "s")
    script = textwrap.dedent(f"""
        import os, numpy as np
        from ragcun.store.doc_store import DocStore, Record
        store, _ = DocStore.load({str(tmp_path / 's')!r})
        store.delete(["cat"])
        store.add([Record("new", "cat cat cat")], np.ones((1, 8), dtype=np.float32))
        store.save({str(tmp_path / 's')!r})
        os.kill(os.getpid(), 9)
    """)
    subprocess.run([sys.executable, "-c", script], check=False)
    loaded, _ = DocStore.load(tmp_path / "s")
    assert "cat" not in loaded and "new" in loaded
    assert [h.record.id for h in loaded.search(None, 5, text="cat", mode="lexical")] == ["new", "dog"]
    assert set(loaded.lexical.ids) == {i for i in loaded.ids if loaded.get([i])[0].text}


def test_saves_without_a_lexical_index_are_reindexed_on_load(tmp_path):
    store, _ = make_store()
    store.lexical = None  # as written before the lexical index existed
    store.save(tmp_path / "old")
    loaded, _ = DocStore.load(tmp_path / "old")
    assert loaded.search(None, 1, text="quasar", mode="lexical")[0].record.id == "quasar"
