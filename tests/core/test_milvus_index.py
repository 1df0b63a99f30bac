"""``MilvusL2Index`` on real Milvus Lite: exact parity with ``L2Index``, persistence across processes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

pytest.importorskip("pymilvus", reason='Milvus tests need the extra: pip install "ragcun[milvus]"')
pytest.importorskip("milvus_lite", reason='Milvus tests need Milvus Lite: pip install "ragcun[milvus]"')

from ragcun.index.faiss_l2 import L2Index  # noqa: E402
from ragcun.index.filters import compile_filter  # noqa: E402
from ragcun.index.milvus.filters import milvus_filter_expression, quote, translate_filter  # noqa: E402
from ragcun.index.milvus.index import MAX_TOPK, MilvusL2Index  # noqa: E402
from ragcun.index.milvus.lite import is_lite_uri  # noqa: E402

DIM = 384
N = 5_000


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray]:
    """5,000 seeded N(0, I) 384-d vectors with string ids, and 20 queries."""
    rng = np.random.default_rng(1234)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((20, DIM)).astype(np.float32)
    return [f"doc-{i}" for i in range(N)], vectors, queries


@pytest.fixture(scope="module")
def pair(tmp_path_factory, data):
    """The same vectors in ``MilvusL2Index`` (FLAT, Milvus Lite) and in exact ``L2Index``."""
    ids, vectors, _ = data
    index = MilvusL2Index(str(tmp_path_factory.mktemp("milvus") / "parity.db"), collection="parity")
    index.add(ids, vectors)
    exact = L2Index()
    exact.add(ids, vectors)
    yield index, exact
    index.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 16-d Milvus Lite index holding 50 vectors ``s0``..``s49`` with metadata ``{"n": i, "tag": ...}``."""
    path = str(tmp_path_factory.mktemp("milvus") / "small.db")
    vectors = np.random.default_rng(7).standard_normal((50, 16)).astype(np.float32)
    index = MilvusL2Index(path, collection="small")
    index.add([f"s{i}" for i in range(50)], vectors,
              metadata=[{"n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(50)])
    yield index, vectors
    index.close()


def assert_same(index, exact, queries: np.ndarray, k: int = 10) -> None:
    got_ids, got_d = index.search(queries, k)
    want_ids, want_d = exact.search(queries, k)
    assert got_ids == want_ids
    np.testing.assert_allclose(got_d, want_d, atol=1e-3)


# -- parity ---------------------------------------------------------------------------------------
def test_flat_matches_exact_l2index(pair, data):
    index, exact = pair
    assert index.count == exact.count
    assert index.dim == DIM
    assert_same(index, exact, data[2])


def test_flat_matches_exact_after_removing_100(pair, data):
    index, exact = pair
    ids, _, queries = data
    # remove the current nearest neighbours first, so the removals change the answers
    nearest = list(dict.fromkeys(i for row in exact.search(queries, 5)[0] for i in row))
    doomed = list(dict.fromkeys(nearest + ids[::50]))[:100]
    assert index.remove(doomed) == 100
    assert exact.remove(doomed) == 100
    assert index.count == exact.count
    assert_same(index, exact, queries)


def test_distances_are_euclidean_not_squared(pair, data):
    index, _ = pair
    ids, vectors, queries = data
    got_ids, got_d = index.search(queries[:3], 5)
    for row in range(3):
        stored = index.get_vectors(got_ids[row])
        np.testing.assert_allclose(got_d[row], np.linalg.norm(stored - queries[row], axis=1), rtol=1e-4)


def test_fresh_process_reads_the_same_file(tmp_path_factory, data):
    """Another process opening the closed Milvus Lite file gets the same results (and imports pymilvus lazily)."""
    ids, vectors, queries = data
    folder = tmp_path_factory.mktemp("milvus")
    path = str(folder / "shared.db")
    with MilvusL2Index(path, collection="persist") as index:
        index.add(ids[:1000], vectors[:1000])
        index.remove(ids[:10])
        want_ids, want_d = index.search(queries, 10)
    np.save(folder / "queries.npy", queries)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import ragcun, ragcun.index.milvus.index
        lazy = "pymilvus" not in sys.modules
        with ragcun.index.milvus.index.MilvusL2Index({path!r}, collection="persist") as index:
            ids, dist = index.search(np.load({str(folder / "queries.npy")!r}), 10)
            print(json.dumps({{"lazy": lazy, "count": index.count, "ids": ids, "dist": dist.tolist()}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["lazy"], "importing ragcun.index.milvus.index must not import pymilvus"
    assert out["count"] == 990
    assert out["ids"] == want_ids
    np.testing.assert_allclose(np.asarray(out["dist"]), want_d, atol=1e-5)


# -- protocol behaviour ---------------------------------------------------------------------------
def test_satisfies_vector_index_protocol(small):
    from ragcun.index.protocol import VectorIndex

    assert isinstance(small[0], VectorIndex)


def test_add_replaces_existing_id(small):
    index, vectors = small
    before = index.count
    index.add(["s3"], np.full((1, 16), 9.0, dtype=np.float32), metadata=[{"n": 3, "tag": "odd"}])
    assert index.count == before
    np.testing.assert_allclose(index.get_vectors(["s3"])[0], 9.0)
    index.add(["s3"], vectors[3:4], metadata=[{"n": 3, "tag": "odd"}])
    np.testing.assert_allclose(index.get_vectors(["s3", "s1"]), vectors[[3, 1]])


def test_search_pads_when_fewer_than_k(tmp_path):
    with MilvusL2Index(str(tmp_path / "pad.db")) as index:
        ids, dist = index.search(np.zeros((2, 4), dtype=np.float32), 3)  # nothing stored, dim unknown
        assert ids == [[None] * 3] * 2 and np.isinf(dist).all()
        index.add(["a", "b"], np.eye(2, 4, dtype=np.float32))
        ids, dist = index.search(np.zeros(4, dtype=np.float32), 4)
        assert sorted(ids[0][:2]) == ["a", "b"] and ids[0][2:] == [None, None]
        np.testing.assert_allclose(dist[0, :2], 1.0, atol=1e-6)
        assert np.isinf(dist[0, 2:]).all()
        assert index.remove(["a", "b", "a"]) == 2
        assert index.count == 0


def test_metadata_round_trip_and_string_filter(small):
    index, vectors = small
    assert index.get_metadata(["s4", "s5"]) == [{"n": 4, "tag": "even"}, {"n": 5, "tag": "odd"}]
    ids, _ = index.search(vectors[:1], 50, filter='metadata["tag"] == "odd" and metadata["n"] < 10')
    assert sorted(i for i in ids[0] if i) == sorted(f"s{i}" for i in (1, 3, 5, 7, 9))


def test_ids_with_quotes_and_backslashes(tmp_path):
    odd_ids = ["it's", 'say "hi"', "back\\slash", "new\nline", "ünï"]
    with MilvusL2Index(str(tmp_path / "quotes.db"), dim=3) as index:
        index.add(odd_ids, np.arange(15, dtype=np.float32).reshape(5, 3))
        np.testing.assert_allclose(index.get_vectors(odd_ids[::-1])[0], [12, 13, 14])
        assert index.remove(odd_ids[:3]) == 3
        assert index.count == 2


@pytest.mark.parametrize("index_type, params, search_params", [
    ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64}),
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16}),
])
def test_approximate_index_types(tmp_path, data, index_type, params, search_params):
    ids, vectors, queries = data
    spec = {"index_type": index_type, "params": params, "search_params": search_params}
    with MilvusL2Index(str(tmp_path / "ann.db"), index_params=spec) as index:
        index.add(ids[:2000], vectors[:2000])
        got, _ = index.search(queries, 10)
        info = index._live.describe_index(index.collection, "vector")
        assert (info["index_type"], info["metric_type"]) == (index_type, "L2")
    exact = L2Index()
    exact.add(ids[:2000], vectors[:2000])
    want, _ = exact.search(queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
    assert recall >= 0.9


def test_reopen_keeps_existing_index_type(tmp_path):
    path = str(tmp_path / "reopen.db")
    with MilvusL2Index(path, index_params={"index_type": "HNSW"}, dim=4):
        pass
    with MilvusL2Index(path) as index:
        assert index.dim == 4 and "HNSW" in repr(index)
    with pytest.raises(ValueError, match="already has a HNSW index"):
        MilvusL2Index(path, index_params={"index_type": "FLAT"})


# -- bad input ------------------------------------------------------------------------------------
def _names_location(exc: pytest.ExceptionInfo, index_or_uri: object, collection: str = "small") -> None:
    uri = getattr(index_or_uri, "uri", index_or_uri)
    assert repr(uri) in str(exc.value) and repr(collection) in str(exc.value)


def test_wrong_dimension(small):
    index, _ = small
    with pytest.raises(ValueError, match="dimension 8, the index expects 16") as exc:
        index.add(["x"], np.zeros((1, 8), dtype=np.float32))
    _names_location(exc, index)
    with pytest.raises(ValueError, match="dimension 8") as exc:
        index.search(np.zeros((1, 8), dtype=np.float32), 3)
    _names_location(exc, index)
    with pytest.raises(ValueError, match="holds vectors of dimension 16, not 8") as exc:
        MilvusL2Index(index.uri, collection="small", dim=8)
    _names_location(exc, index)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_vectors(small, bad):
    index, _ = small
    vec = np.zeros((1, 16), dtype=np.float32)
    vec[0, 5] = bad
    with pytest.raises(ValueError, match="NaN or infinite") as exc:
        index.add(["x"], vec)
    _names_location(exc, index)
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search(vec, 3)
    assert "x" not in {i for row in index.search(np.zeros((1, 16)), 50)[0] for i in row}


def test_unknown_ids(small):
    index, _ = small
    before = index.count
    with pytest.raises(KeyError, match="unknown id.*nothing removed.*'nope'") as exc:
        index.remove(["s10", "nope"])
    _names_location(exc, index)
    assert index.count == before
    with pytest.raises(KeyError, match="'nope'"):
        index.get_vectors(["s1", "nope"])


@pytest.mark.parametrize("ids, vectors, error, match", [
    ("abc", np.zeros((3, 16)), TypeError, "not a single string"),
    (["a", "a"], np.zeros((2, 16)), ValueError, "duplicates"),
    (["a", ""], np.zeros((2, 16)), ValueError, "non-empty strings"),
    (["a", 3], np.zeros((2, 16)), ValueError, "non-empty strings"),
    (["a"], np.zeros((2, 16)), ValueError, "1 ids for 2 vectors"),
])
def test_bad_ids(small, ids, vectors, error, match):
    with pytest.raises(error, match=match):
        small[0].add(ids, vectors)


def test_bad_k(small):
    index, vectors = small
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive int"):
            index.search(vectors[:1], k)
    with pytest.raises(ValueError, match=f"at most {MAX_TOPK}"):
        index.search(vectors[:1], MAX_TOPK + 1)


def test_unreachable_uri():
    with pytest.raises(ConnectionError, match="cannot connect") as exc:
        MilvusL2Index("http://127.0.0.1:9", collection="far", timeout=5)
    _names_location(exc, "http://127.0.0.1:9", "far")


def test_missing_local_directory(tmp_path):
    uri = str(tmp_path / "no" / "such" / "dir.db")
    with pytest.raises(ConnectionError, match="does not exist") as exc:
        MilvusL2Index(uri)
    _names_location(exc, uri, "ragcun")


def test_collection_made_by_something_else(small):
    from pymilvus import DataType, MilvusClient

    index, _ = small
    client = MilvusClient(index.uri)  # shares the in-process Milvus Lite server of `small`
    try:
        client.create_collection("default_schema", dimension=16)  # INT64 ids, COSINE metric
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
        schema.add_field("metadata", DataType.JSON)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection("inner_product", schema=schema, index_params=params)
    finally:
        client.close()
    with pytest.raises(ValueError, match="was not made by MilvusL2Index") as exc:
        MilvusL2Index(index.uri, collection="default_schema")
    _names_location(exc, index, "default_schema")
    with pytest.raises(ValueError, match="metric IP; MilvusL2Index needs an L2") as exc:
        MilvusL2Index(index.uri, collection="inner_product")
    _names_location(exc, index, "inner_product")
    assert index.count == 50  # the failed opens did not stop the shared server


@pytest.mark.parametrize("params, match", [
    ({"metric_type": "IP"}, "metric_type must be L2"),
    ({"index_type": "DISKANN"}, "index_type must be one of"),
    ({"index_type": "HNSW", "nlist": 4}, "unknown keys"),
    ({"index_type": "IVF_PQ", "params": {"nlist": 8, "m": 8}}, "Milvus Lite cannot build IVF_PQ"),
])
def test_bad_index_params(tmp_path, params, match):
    uri = str(tmp_path / "params.db")
    with pytest.raises(ValueError, match=match) as exc:
        MilvusL2Index(uri, index_params=params)
    _names_location(exc, uri, "ragcun")


def test_closed_index_refuses_work(tmp_path):
    index = MilvusL2Index(str(tmp_path / "closed.db"), dim=2)
    index.close()
    index.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        index.add(["a"], np.zeros((1, 2)))


def test_missing_pymilvus_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(ImportError, match=r'pip install "ragcun\[milvus\]"'):
        MilvusL2Index("./never-created.db")


# -- filter push-down ----------------------------------------------------------------------------
MISSING = object()
VALUES = [MISSING, None, True, False, 0, 1, 2, 2.5, -1, "a", "ab", "2", [1, "a"], ["x"], {"x": 1}]
B_VALUES = [MISSING, 1, "x", [1, "x"]]
ROWS = [{key: v for key, v in (("a", a), ("b", b)) if v is not MISSING} for a in VALUES for b in B_VALUES]


@pytest.fixture(scope="module")
def metadata_index(tmp_path_factory):
    """60 rows whose metadata mixes types (missing keys, None, bools, numbers, strings, lists, dicts)."""
    index = MilvusL2Index(str(tmp_path_factory.mktemp("milvus") / "filters.db"), collection="filters")
    vectors = np.random.default_rng(3).standard_normal((len(ROWS), 2)).astype(np.float32)
    index.add([f"r{i}" for i in range(len(ROWS))], vectors, metadata=ROWS)
    yield index
    index.close()


scalars = st.sampled_from([None, True, False, 0, 1, 2, 2.5, -1, "a", "ab", "2", "x", [1, "a"], {"x": 1}])
lists = st.lists(scalars, max_size=3)
operators = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$neq", "$gt", "$gte", "$lt", "$lte", "$contains", "$text_match"]), scalars),
    st.tuples(st.sampled_from(["$in", "$nin", "$any", "$all"]), lists),
    st.tuples(st.just("$exists"), st.booleans()),
)
conditions = st.one_of(scalars, lists, st.lists(operators, max_size=2).map(dict))  # a list: membership; {}: anything
leaves = st.dictionaries(st.sampled_from(["a", "b", "c"]), conditions, min_size=1, max_size=2)
specs = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
    inner.map(lambda x: {"$not": x}),
), max_leaves=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs)
def test_pushed_down_filter_keeps_every_match(metadata_index, spec):
    """Milvus keeps every row ``ragcun.index.filters`` keeps, and exactly those when the translation is exact."""
    predicate = compile_filter(spec)
    try:
        want = {f"r{i}" for i, md in enumerate(ROWS) if predicate(md)}
    except TypeError:  # the Python predicate itself raises (e.g. 1 in "ab"): nothing to compare
        reject()
    expression, exact = translate_filter(spec)
    ids, _ = metadata_index.search(np.zeros((1, 2), dtype=np.float32), len(ROWS), filter=spec)
    got = {i for i in ids[0] if i is not None}
    assert want <= got, (expression, sorted(want - got))
    if exact:
        assert got == want, (expression, sorted(got - want))


def test_translation_examples():
    assert translate_filter(None) == ("", True)
    assert translate_filter({"genre": "sf"}) == ('(exists metadata["genre"] and metadata["genre"] == "sf")', True)
    expr, exact = translate_filter({"year": {"$gte": 1990, "$lt": 2000}, "tag": {"$in": ["a", "b"]}})
    assert expr.count(" and ") == 6 and expr.count(" or ") == 1
    assert not exact  # orderings are exact only un-negated: `$not` would widen them
    assert translate_filter({"$not": {"year": {"$gte": 1990}}}) == ("", False)
    assert translate_filter({"$not": {"tag": {"$nin": ["a"]}}})[1]
    assert translate_filter({"title": {"$contains": "war"}}) == ("", False)
    assert translate_filter({"$or": [{"a": 1}, {"b": {"$text_match": "x"}}]}) == ("", False)
    assert translate_filter(lambda md: True) == ("", False)
    with pytest.raises(ValueError, match="unknown filter operator"):
        translate_filter({"a": {"$regex": "x"}})
    with pytest.raises(ValueError, match="mixes operators and plain keys"):
        translate_filter({"a": {"$gt": 1, "b": 2}})


def test_translation_of_list_membership_neq_and_empty_conditions():
    """A list value is membership, ``$neq`` is ``$ne``, ``{}`` constrains nothing, as in ``compile_filter``."""
    assert translate_filter({"page": [1, 2]}) == translate_filter({"page": {"$in": [1, 2]}})
    assert translate_filter({"page": [1, 2]})[0].count(" or ") == 1
    assert translate_filter({"page": {"$neq": 1}}) == translate_filter({"page": {"$ne": 1}})
    assert translate_filter({"page": {}}) == ("", True)
    assert translate_filter({"page": None}) == ("", False)  # a missing key reads as None: left to Python


# -- helpers --------------------------------------------------------------------------------------
def test_quote_and_lite_uri():
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert is_lite_uri("./ragcun.db") and not is_lite_uri("http://host:19530")
    assert milvus_filter_expression(None) == ""


@pytest.mark.parametrize("name", ["BM25_FUNCTION", "BM25_PARAMS", "INDEX_TYPES"])
def test_constants_moved_to_the_schema_module_still_import_with_a_warning(name):
    import ragcun.index.milvus.index as index_module
    import ragcun.index.milvus.schema as schema

    with pytest.warns(DeprecationWarning, match="ragcun.index.milvus.schema"):
        assert getattr(index_module, name) is getattr(schema, name)
    with pytest.raises(AttributeError):
        index_module.NO_SUCH_NAME  # noqa: B018
