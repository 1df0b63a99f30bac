"""Hostile metadata, vectors, texts and arguments get clear errors or sensible results (issue 12, items 7 and 8)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.protocol import MAX_SQUARED_NORM, as_matrix
from ragcun.model.encoding import check_texts, encode_texts
from ragcun.scoring.distance_law import DistanceLaw
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.metadata import check_metadata


def _vecs(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("metadata, match", [
    ({1: "x"}, "metadata key 1 is an int; keys must be strings"),
    ({"o": object()}, "metadata key 'o' holds an object, which JSON cannot store unchanged"),
    ({"t": (1, 2)}, "metadata key 't' holds a tuple, which JSON cannot store unchanged; use a list"),
    ({"s": {1, 2}}, "metadata key 's' holds a set, which JSON cannot store unchanged; use a list"),
    ({"ok": 1, "in": {"x": [1, {"y": {2}}]}}, r"metadata key 'in' holds a set at \['x'\]\[1\]\['y'\], which JSON"),
    ({"deep": {"x": [1, {"y": float("nan")}]}}, r"metadata key 'deep' holds nan at \['x'\]\[1\]\['y'\]; JSON has no NaN"),
    ({"inf": -math.inf}, "metadata key 'inf' holds -inf; JSON has no NaN"),
    ({"when": Path("a")}, "metadata key 'when' holds a (PosixPath|WindowsPath)"),
    ({"n": np.int64(3)}, "metadata key 'n' holds an int64"),
    ({"nested": {2: "x"}}, r"metadata key 'nested' holds key 2 \(an int\); keys must be strings"),
    (["not", "a", "dict"], "metadata must be a dict"),
])
def test_metadata_that_would_not_round_trip_is_refused_naming_record_and_key(metadata, match: str) -> None:
    store = DocStore()
    with pytest.raises(ValueError, match=f"record 'r1': .*({match})"):
        store.add([Record("r0", "fine"), Record("r1", "bad", metadata)], _vecs(2))
    assert len(store) == 0 and store.index.count == 0


def test_metadata_that_round_trips_behaves_the_same_before_and_after_a_save(tmp_path: Path) -> None:
    meta = {"a": None, "b": True, "c": -3, "d": 2.5, "e": "é\ud800", "f": [1, [2, "x"]], "g": {"h": {"i": []}},
            "big": 2**70, "neg0": -0.0}
    store = DocStore()
    store.add([Record("r", "text", meta), Record("q", "other", {"b": False})], _vecs(2))
    spec = {"$and": [{"b": True}, {"f": {"$contains": 1}}, {"big": {"$gt": 2**69}}]}
    before = [h.record.id for h in store.search(_vecs(1)[0], 2, filter=spec)]
    store.save(tmp_path / "s")
    loaded, _ = DocStore.load(tmp_path / "s")
    assert loaded.get(["r"])[0].metadata == meta
    assert [h.record.id for h in loaded.search(_vecs(1)[0], 2, filter=spec)] == before == ["r"]
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="nested too deeply"):
        check_metadata(cyclic)


def test_huge_finite_vectors_are_refused_instead_of_vanishing() -> None:
    index = L2Index()
    index.add(["small"], np.ones((1, 4), dtype=np.float32))
    huge = np.full((2, 4), 1e20, dtype=np.float32)
    for call in (lambda: index.add(["h0", "h1"], huge), lambda: index.search(huge[:1], 3)):
        with pytest.raises(ValueError, match=r"\[0\] is too large .*overflow float32"):
            call()
    edge = np.zeros((1, 4), dtype=np.float32)
    edge[0, 0] = np.float32(math.sqrt(MAX_SQUARED_NORM) * 0.999)
    index.add(["edge", "opposite"], np.vstack([edge, -edge]))
    ids, dist = index.search(edge, 3)
    assert ids[0][0] == "edge" and None not in ids[0] and np.isfinite(dist).all()
    assert ids[0][2] == "opposite"  # the farthest pair, 2 * norm apart, still has a finite distance


def test_empty_lists_and_empty_arrays_are_both_a_no_op() -> None:
    store = DocStore()
    assert store.add([], []) == [] and store.add([], np.zeros((0, 4))) == []
    store.add([Record("a", "x")], _vecs(1))
    assert store.add([], []) == [] and store.add([], np.zeros((0, 4))) == [] and len(store) == 1
    assert as_matrix([], 4).shape == (0, 4) and as_matrix([], None).shape == (0, 0)
    with pytest.raises(ValueError, match="got 0 records for 1 vectors"):
        store.add([], _vecs(1))


def test_identical_vectors_fall_back_to_the_isotropic_law() -> None:
    store = DocStore()
    store.add([Record(f"d{i}", "same") for i in range(40)], np.ones((40, 4), dtype=np.float32))
    hits = store.search(np.ones(4, dtype=np.float32), 3)
    assert [h.score for h in hits] == [1.0, 1.0, 1.0]
    law = store.scorer.law
    assert law == DistanceLaw(4.0, 1.0, "isotropic", 40)
    assert store.search(np.zeros(4, dtype=np.float32), 1)[0].score == pytest.approx(float(law(np.array(2.0))))
    assert store.scorer.law is law  # not refitted at every search
    store.add([Record(f"e{i}", "spread") for i in range(20)], _vecs(20))  # +50%: refitted
    store.search(np.ones(4, dtype=np.float32), 1)
    assert store.scorer.law.source == "empirical" and store.scorer.law.n_vectors == 60


@pytest.mark.parametrize("k, fetch_k, lam, match", [
    (2.5, 20, 0.5, "k must be a positive int; got 2.5"), ("3", 20, 0.5, "k must be a positive int; got '3'"),
    (2, 2.0, 0.5, "fetch_k must be a positive int"), (2, 20, 1.5, r"lambda_mult must be a number in \[0, 1\]"),
    (2, 20, "0.5", "lambda_mult must be a number"), (2, 20, math.nan, "lambda_mult"), (0, 20, 0.5, "got 0"),
])
def test_mmr_arguments_are_checked(k, fetch_k, lam, match: str) -> None:
    store = DocStore()
    store.add([Record(f"d{i}", "x") for i in range(5)], _vecs(5))
    with pytest.raises(ValueError, match=match):
        store.mmr_search(_vecs(1)[0], k, fetch_k, lam)
    assert len(store.mmr_search(_vecs(1)[0], 2, 4, 0.5)) == 2


def test_a_lone_surrogate_is_named_before_the_tokenizer_sees_it(tiny_model_dir: str) -> None:
    problem = r"texts\[1\] is not valid Unicode text: surrogates not allowed '\\ud800' at position 3"
    with pytest.raises(ValueError, match=problem):
        check_texts(["fine", "abc\ud800"])
    from ragcun import GaussianEncoder

    encoder = GaussianEncoder(tiny_model_dir)
    with pytest.raises(ValueError, match=r"documents\[0\] is not valid Unicode"):
        encode_texts(encoder, ["\ud800"], what="documents")
    assert encode_texts(encoder, ["\u00e9t\u00e9 \U0001f600"]).shape == (1, encoder.get_embedding_dimension())
