"""L2Index mechanics on small random vectors: exactness, ids, removal, ANN indexes, persistence, threads."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.protocol import VectorIndex
from ragcun.io.saves import SaveFormatError, manifest_checksum

DIM = 8


def _vecs(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"d{i}" for i in range(start, start + n)]


def test_is_a_vector_index_and_dim_comes_from_first_add() -> None:
    index = L2Index()
    assert isinstance(index, VectorIndex)
    assert index.dim is None and index.count == 0
    index.add(_ids(3), _vecs(3))
    assert index.dim == DIM and index.count == 3


def test_search_returns_euclidean_not_squared_distances_in_order() -> None:
    x = _vecs(50)
    q = _vecs(4, seed=1)
    index = L2Index(DIM)
    index.add(_ids(50), x)
    ids, dist = index.search(q, 5)
    brute = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)
    for row in range(4):
        order = np.argsort(brute[row])[:5]
        assert ids[row] == [f"d{i}" for i in order]
        np.testing.assert_allclose(dist[row], brute[row][order], rtol=1e-4)


def test_padding_when_fewer_than_k_and_empty_index() -> None:
    index = L2Index(DIM)
    ids, dist = index.search(_vecs(1), 3)
    assert ids == [[None, None, None]] and np.isinf(dist).all()
    index.add(["a"], _vecs(1))
    ids, dist = index.search(_vecs(1), 3)
    assert ids[0][0] == "a" and ids[0][1:] == [None, None] and np.isinf(dist[0, 1:]).all()


def test_replace_remove_and_get_vectors() -> None:
    index = L2Index()
    x = _vecs(5)
    index.add(_ids(5), x)
    index.add(["d2"], x[4:5] + 100)
    assert index.count == 5
    np.testing.assert_allclose(index.get_vectors(["d2"])[0], x[4] + 100)
    assert index.remove(["d0", "d1"]) == 2
    assert index.count == 3 and "d0" not in index
    ids, _ = index.search(x[0], 5)
    assert set(ids[0]) == {"d2", "d3", "d4", None}
    with pytest.raises(KeyError, match="d0"):
        index.remove(["d0"])
    with pytest.raises(KeyError, match="nope"):
        index.get_vectors(["nope"])


@pytest.mark.parametrize("bad, match", [
    (np.full((1, DIM), np.nan), "NaN"),
    (np.zeros((1, DIM + 1)), "dimension 9"),
    (None, "None"),
    ([["a"] * DIM], "numeric"),
])
def test_bad_vectors_raise_clear_errors(bad: object, match: str) -> None:
    index = L2Index(DIM)
    with pytest.raises(ValueError, match=match):
        index.add(["x"], bad)


def test_bad_ids_and_k() -> None:
    index = L2Index(DIM)
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add(["a", "b"], _vecs(1))
    with pytest.raises(ValueError, match="duplicates"):
        index.add(["a", "a"], _vecs(2))
    with pytest.raises(ValueError, match="non-empty strings"):
        index.add([""], _vecs(1))
    with pytest.raises(ValueError, match="k must be"):
        index.search(_vecs(1), 0)
    with pytest.raises(ValueError, match="invalid FAISS factory"):
        L2Index(DIM, factory="NotAnIndex")


@pytest.mark.parametrize("factory, kwargs", [
    ("HNSW16", {"ef_search": 64}),
    ("IVF4,Flat", {"train_size": 100, "nprobe": 4}),
])
def test_approximate_indexes_train_remove_and_rebuild(factory: str, kwargs: dict, tmp_path) -> None:
    x = _vecs(300)
    index = L2Index(factory=factory, **kwargs)
    index.add(_ids(50), x[:50])          # below train_size: exact staging for IVF
    index.add(_ids(250, 50), x[50:])     # crosses train_size: trained and moved over
    index.remove(_ids(200))              # tombstones, then a rebuild (more dead than live)
    assert index.count == 100
    ids, dist = index.search(x[200:210], 1)
    assert [r[0] for r in ids] == _ids(10, 200)
    np.testing.assert_allclose(dist[:, 0], 0, atol=1e-3)
    assert not any(i in {f"d{j}" for j in range(200)} for row in index.search(x[:5], 20)[0] for i in row)
    index.save(tmp_path / "ix")
    again = L2Index.load(tmp_path / "ix")
    assert again.search(x[200:210], 3)[0] == index.search(x[200:210], 3)[0]


def test_save_load_roundtrip_and_overwrite(tmp_path) -> None:
    index = L2Index()
    index.add(_ids(20), _vecs(20))
    index.save(tmp_path / "ix")
    index.remove(["d0"])
    index.save(tmp_path / "ix")  # overwrite atomically
    again = L2Index.load(tmp_path / "ix", dim=DIM)
    assert again.count == 19 and again.ids == index.ids
    q = _vecs(3, seed=5)
    assert again.search(q, 4)[0] == index.search(q, 4)[0]
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]  # no temp dirs left behind
    assert not any("pickle" in p.name for p in (tmp_path / "ix").iterdir())
    empty = L2Index()
    empty.save(tmp_path / "empty")
    assert L2Index.load(tmp_path / "empty").count == 0


def test_failed_save_keeps_previous_copy(tmp_path, monkeypatch) -> None:
    index = L2Index()
    index.add(_ids(5), _vecs(5))
    index.save(tmp_path / "ix")
    index.add(_ids(5, 5), _vecs(5, seed=2))
    monkeypatch.setattr("ragcun.index.faiss_l2.faiss.write_index", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "ix")
    assert L2Index.load(tmp_path / "ix").count == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]


def test_load_rejects_missing_truncated_tampered_and_wrong_dim(tmp_path) -> None:
    index = L2Index()
    index.add(_ids(10), _vecs(10))
    src = tmp_path / "ix"
    index.save(src)
    with pytest.raises(ValueError, match="dimension 8, expected 16"):
        L2Index.load(src, dim=16)
    faiss_file = src / "index.faiss"
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[:-10])
    with pytest.raises(SaveFormatError, match="index.faiss: truncated"):
        L2Index.load(src)
    faiss_file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(SaveFormatError, match="index.faiss: checksum mismatch"):
        L2Index.load(src)
    faiss_file.unlink()
    with pytest.raises(FileNotFoundError, match="index.faiss"):
        L2Index.load(src)
    (src / "manifest.json").write_text("{not json")
    with pytest.raises(SaveFormatError, match="manifest.json"):
        L2Index.load(src)
    (src / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest missing"):
        L2Index.load(src)
    with pytest.raises(FileNotFoundError, match="no saved"):
        L2Index.load(tmp_path / "nowhere")


def test_load_rejects_other_format_version(tmp_path) -> None:
    index = L2Index()
    index.add(["a"], _vecs(1))
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["format_version"] = 99
    manifest["manifest_sha256"] = manifest_checksum(manifest)  # a genuine save of another version
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SaveFormatError, match="format_version 99"):
        L2Index.load(tmp_path / "ix")


def test_concurrent_searches_while_adding_and_removing() -> None:
    index = L2Index(DIM)
    base = _vecs(200)
    index.add(_ids(200), base)
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                ids, dist = index.search(base[:4], 5)
                assert all(i is not None for row in ids for i in row)
                assert np.all(np.diff(dist, axis=1) >= -1e-5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for step in range(100):
        new = _ids(5, 1000 + 5 * step)
        index.add(new, _vecs(5, seed=step + 10))
        index.remove(new[:3])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert index.count == 200 + 100 * 2


_op = st.one_of(
    st.tuples(st.just("add"), st.lists(st.integers(0, 14), min_size=1, max_size=6, unique=True), st.integers(0, 10**6)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 14), min_size=1, max_size=4, unique=True), st.just(0)),
    st.tuples(st.just("search"), st.integers(1, 6), st.integers(0, 10**6)),
)


@pytest.mark.parametrize("factory, kwargs", [("Flat", {}), ("IVF2,Flat", {"train_size": 6, "nprobe": 2})])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, max_size=25))
def test_matches_numpy_oracle(factory: str, kwargs: dict, ops: list) -> None:
    """Random add/remove/search sequences agree with brute force (exact-probing IVF included)."""
    index, oracle = L2Index(4, factory, **kwargs), {}
    for kind, arg, seed in ops:
        if kind == "add":
            vecs = _vecs(len(arg), seed, dim=4)
            index.add([f"k{i}" for i in arg], vecs)
            oracle.update({f"k{i}": v for i, v in zip(arg, vecs)})
        elif kind == "remove":
            keys = [f"k{i}" for i in arg]
            if all(k in oracle for k in keys):
                assert index.remove(keys) == len(keys)
                for key in keys:
                    del oracle[key]
            else:
                with pytest.raises(KeyError):
                    index.remove(keys)
        else:
            q = _vecs(2, seed, dim=4)
            ids, dist = index.search(q, arg)
            for row in range(2):
                want = sorted((float(np.linalg.norm(q[row] - v)), key) for key, v in oracle.items())[:arg]
                got = [(float(d), i) for i, d in zip(ids[row], dist[row]) if i is not None]
                assert len(got) == len(want)
                np.testing.assert_allclose([d for d, _ in got], [d for d, _ in want], rtol=1e-4, atol=1e-5)
                for (d, i) in got:
                    assert abs(np.linalg.norm(q[row] - oracle[i]) - d) < 1e-4
        assert index.count == len(oracle)
        assert sorted(index.ids) == sorted(oracle)
