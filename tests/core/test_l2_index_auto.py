"""``L2Index(factory="auto")``: exact below the size threshold, the approximate target above it.

Small threshold (200 vectors) and tiny HNSW / IVF targets on random vectors; checked against a
brute-force oracle on both sides of the threshold, across removes and across save/load.
"""

from __future__ import annotations

import numpy as np
import pytest

from ragcun.index.faiss_l2 import AUTO_FACTORY, AUTO_THRESHOLD, L2Index
from ragcun.io.saves import SaveFormatError
from ragcun.store.doc_store import DocStore

DIM = 8
THRESHOLD = 200
TARGETS = [("HNSW16", {}), ("IVF4,Flat", {"nprobe": 4})]  # nprobe = nlist: IVF is exact too


def _vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"d{i}" for i in range(start, start + n)]


def _exact(index: L2Index, x: dict[str, np.ndarray], q: np.ndarray, k: int) -> None:
    """``index``'s top ``k`` for ``q`` equal the brute-force top ``k`` over the live vectors ``x``."""
    keys = list(x)
    mat = np.stack([x[i] for i in keys])
    got, dist = index.search(q, k)
    brute = np.linalg.norm(q[:, None, :] - mat[None, :, :], axis=2)
    for row in range(len(q)):
        order = np.argsort(brute[row])[:k]
        assert got[row] == [keys[i] for i in order]
        np.testing.assert_allclose(dist[row], brute[row][order], rtol=1e-4, atol=1e-5)


def _auto(target: str, kwargs: dict) -> L2Index:
    return L2Index(factory="auto", threshold=THRESHOLD, auto_factory=target, **kwargs)


def test_defaults_and_docstore_uses_auto() -> None:
    index = L2Index(factory="auto")
    assert index.threshold == AUTO_THRESHOLD and index.target_factory == AUTO_FACTORY
    assert L2Index().factory == "Flat"  # an explicit L2Index stays exact unless asked
    store = DocStore()
    assert isinstance(store.index, L2Index) and store.index.factory == "auto"


@pytest.mark.parametrize("target, kwargs", TARGETS)
def test_exact_below_threshold_and_target_above(target: str, kwargs: dict) -> None:
    x = _vecs(400)
    q = _vecs(5, seed=1)
    index = _auto(target, kwargs)
    index.add(_ids(THRESHOLD - 1), x[:THRESHOLD - 1])
    assert not index.approximate
    _exact(index, dict(zip(_ids(THRESHOLD - 1), x)), q, 5)
    index.add(_ids(1, THRESHOLD - 1), x[THRESHOLD - 1:THRESHOLD])  # reaches the threshold: switches
    assert index.approximate and index.count == THRESHOLD
    index.add(_ids(200, THRESHOLD), x[THRESHOLD:])
    live = dict(zip(_ids(400), x))
    ids, dist = index.search(x[:20], 1)  # every stored vector finds itself
    assert [r[0] for r in ids] == _ids(20)
    np.testing.assert_allclose(dist[:, 0], 0, atol=1e-3)
    if target.startswith("IVF"):
        _exact(index, live, q, 5)  # nprobe = nlist: exhaustive
    else:
        found = index.search(q, 10)[0]
        mat = np.stack(list(live.values()))
        truth = np.argsort(np.linalg.norm(q[:, None] - mat[None], axis=2), axis=1)[:, :10]
        recall = np.mean([len(set(f) & {f"d{i}" for i in t}) / 10 for f, t in zip(found, truth)])
        assert recall >= 0.9


@pytest.mark.parametrize("target, kwargs", TARGETS)
def test_removes_after_the_switch(target: str, kwargs: dict) -> None:
    x = _vecs(400)
    index = _auto(target, kwargs)
    index.add(_ids(400), x)
    assert index.approximate
    index.remove(_ids(50))                       # hidden, no rebuild yet
    assert index.count == 350 and index.approximate
    gone = set(_ids(50))
    assert not any(i in gone for row in index.search(x[:50], 20)[0] for i in row)
    assert [r[0] for r in index.search(x[50:60], 1)[0]] == _ids(10, 50)
    index.remove(_ids(230, 50))                  # more dead than live: rebuilt, 120 < threshold: exact again
    assert index.count == 120 and not index.approximate
    _exact(index, dict(zip(_ids(120, 280), x[280:])), _vecs(4, seed=2), 5)
    index.add(_ids(100, 400), _vecs(100, seed=3))  # past the threshold again: approximate again
    assert index.approximate and index.count == 220


@pytest.mark.parametrize("target, kwargs", TARGETS)
def test_persistence_across_the_threshold(target: str, kwargs: dict, tmp_path) -> None:
    x = _vecs(400)
    q = _vecs(5, seed=1)
    index = _auto(target, kwargs)
    index.add(_ids(150), x[:150])
    index.save(tmp_path / "below")
    below = L2Index.load(tmp_path / "below")
    assert (below.factory, below.threshold, below.target_factory) == ("auto", THRESHOLD, target)
    assert not below.approximate
    _exact(below, dict(zip(_ids(150), x)), q, 5)
    below.add(_ids(250, 150), x[150:])           # the loaded index switches when it grows past
    assert below.approximate
    below.save(tmp_path / "above")
    above = L2Index.load(tmp_path / "above")
    assert above.approximate and above.count == 400 and above.target_factory == target
    assert above.ef_search == below.ef_search and above.nprobe == below.nprobe
    assert above.search(q, 5)[0] == below.search(q, 5)[0]
    assert [r[0] for r in above.search(x[300:310], 1)[0]] == _ids(10, 300)


def test_save_load_keeps_factory_settings(tmp_path) -> None:
    for index in (L2Index(factory="HNSW16", ef_search=40), L2Index(factory="auto", threshold=7, auto_factory="HNSW8")):
        index.add(_ids(3), _vecs(3))
        index.save(tmp_path / index.factory)
        again = L2Index.load(tmp_path / index.factory)
        assert (again.factory, again.target_factory, again.threshold, again.ef_search) == \
               (index.factory, index.target_factory, index.threshold, index.ef_search)


def test_bad_auto_settings_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="threshold must be a positive int"):
        L2Index(factory="auto", threshold=0)
    with pytest.raises(ValueError, match="auto_factory must be a FAISS factory"):
        L2Index(factory="auto", auto_factory="auto")
    with pytest.raises(ValueError, match="invalid FAISS factory"):
        L2Index(DIM, factory="auto", auto_factory="NotAnIndex").add(_ids(1), _vecs(1))
    index = L2Index(factory="auto", threshold=5)
    index.add(_ids(2), _vecs(2))
    index.save(tmp_path / "ix")
    table = (tmp_path / "ix" / "ids.json")
    table.write_text(table.read_text().replace('"threshold": 5', '"threshold": -1'))
    with pytest.raises(SaveFormatError):
        L2Index.load(tmp_path / "ix")


@pytest.mark.parametrize("factory", ["Flat", "auto"])
def test_key_table_stays_bounded_under_churn(factory: str, tmp_path) -> None:
    """Removed ids leave no lasting slot: the key -> id table is renumbered once mostly removed."""
    index = L2Index(factory=factory, threshold=THRESHOLD, auto_factory="HNSW16")
    live: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(4)
    for rnd in range(8):                       # replace and remove in rounds: 8 x 1000 adds in all
        x = rng.standard_normal((1000, DIM)).astype(np.float32)
        ids = _ids(1000, start=rnd * 500)      # half of them replace the previous round's ids
        index.add(ids, x)
        live.update(zip(ids, x))
        gone = list(live)[:700]
        index.remove(gone)
        for i in gone:
            del live[i]
    assert index.count == len(live) and set(index.ids) == set(live)
    assert len(index._int2str) <= 2 * index.count + 2000
    keys = list(live)
    mat = np.stack([live[i] for i in keys])
    assert [r[0] for r in index.search(mat[:20], 1)[0]] == keys[:20]
    index.save(tmp_path / "ix")
    again = L2Index.load(tmp_path / "ix")
    assert again.ids == index.ids and again.search(mat[:5], 3)[0] == index.search(mat[:5], 3)[0]
