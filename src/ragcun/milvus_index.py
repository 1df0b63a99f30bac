"""``MilvusL2Index``: the ``VectorIndex`` protocol on Milvus (a cluster by URI, or embedded Milvus Lite).

The same code runs on Milvus Lite (``uri="./ragcun.db"``, a local directory served in-process) and
on a Milvus server or cluster (``uri="http://HOST:19530"``). Vectors are ranked by Milvus's L2
metric; Milvus reports squared distances, this class returns their square root so results match
``ragcun.l2_index.L2Index``. Each row also holds a JSON ``metadata`` field so stores can push
metadata filters down into Milvus (see :func:`translate_filter`).

``pymilvus`` is an optional extra (``pip install "ragcun[milvus]"``) imported only when a
``MilvusL2Index`` is created, so ``import ragcun`` never needs it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcun.filters import compile_filter
from ragcun.vector_index import IndexCapabilities, as_matrix, check_ids, check_k, padded_result

if TYPE_CHECKING:
    from pymilvus import MilvusClient

ID_FIELD = "id"
VECTOR_FIELD = "vector"
METADATA_FIELD = "metadata"
MAX_ID_BYTES = 65_535
"""Milvus's largest VARCHAR, the longest id (in UTF-8 bytes) this index stores."""
MAX_TOPK = 16_384
"""Milvus returns at most this many neighbours per query."""
INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW", "IVF_PQ")
"""Milvus index types accepted in ``index_params["index_type"]``."""
_LITE_MISSING = frozenset({"IVF_PQ"})  # accepted by Milvus Lite 3.x but never built (NotImplementedError)
_QUERY_BATCH = 1_000  # ids per `id in [...]` query or delete
_SEARCH_BATCH = 256  # query rows per search request
# Milvus Lite's exact L2 materialises (queries, rows, dim) float32 differences: cap that per request
_LITE_SEARCH_BYTES = 256 * 2 ** 20
_INSTALL_HINT = 'MilvusL2Index needs pymilvus with Milvus Lite: pip install "ragcun[milvus]"'

# Milvus Lite serves each ``.db`` directory from an in-process server that keeps a lock on it, so a
# second process cannot open the file until this one releases it: count our users per path.
_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


def _pymilvus() -> Any:
    """Import pymilvus, or raise ``ImportError`` saying how to install it."""
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return pymilvus


def is_lite_uri(uri: str) -> bool:
    """Whether pymilvus serves ``uri`` with embedded Milvus Lite (a local path ending in ``.db``)."""
    return uri.endswith(".db")


def quote(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal (backslash, quote and newlines escaped)."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _id_expression(ids: Sequence[str]) -> str:
    return f"{ID_FIELD} in [{', '.join(quote(i) for i in ids)}]"


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _normalise_index_params(index_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"index_type", "params", "search_params"}`` with defaults; ``ValueError`` on anything else."""
    given = dict(index_params or {})
    unknown = set(given) - {"index_type", "metric_type", "params", "search_params"}
    if unknown:
        raise ValueError(f"index_params: unknown keys {sorted(unknown)}; "
                         "use index_type, params (build) and search_params")
    metric = str(given.get("metric_type", "L2")).upper()
    if metric != "L2":
        raise ValueError(f"index_params: metric_type must be L2 (ragcun ranks by Euclidean distance); got {metric}")
    index_type = str(given.get("index_type", "FLAT")).upper()
    if index_type not in INDEX_TYPES:
        raise ValueError(f"index_params: index_type must be one of {', '.join(INDEX_TYPES)}; got {index_type}")
    return {"index_type": index_type, "params": dict(given.get("params") or {}),
            "search_params": dict(given.get("search_params") or {})}


class MilvusL2Index:
    """String-keyed vectors in a Milvus collection, searched by Euclidean distance; implements ``VectorIndex``.

    ``uri`` is a Milvus Lite file (``"./ragcun.db"``) or a server (``"http://HOST:19530"``, with
    ``token="user:password"`` where auth is on). The collection holds a VARCHAR primary key ``id``,
    a FLOAT_VECTOR ``vector`` and a JSON ``metadata``; it is created on the first ``add`` (or at
    once when ``dim`` is given), or opened and checked if it exists. ``index_params`` picks the
    index: ``{"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200},
    "search_params": {"ef": 64}}``; the default is exact ``FLAT``. Every read uses Strong
    consistency, so a search right after ``add`` or ``remove`` sees it. Call :meth:`close` (or use
    ``with``) to free the connection and, for Milvus Lite, the file lock.
    """

    capabilities = IndexCapabilities(metadata_filter=True)

    def __init__(self, uri: str, collection: str = "ragcun", dim: int | None = None,
                 index_params: Mapping[str, Any] | None = None, *, token: str = "",
                 timeout: float | None = None, batch_size: int = 1_000) -> None:
        self.uri = str(uri)
        self.collection = collection
        self._where = f"Milvus collection {collection!r} at {self.uri!r}"
        if dim is not None and (not isinstance(dim, int) or dim <= 0):
            raise ValueError(f"{self._where}: dim must be a positive int or None; got {dim!r}")
        if batch_size <= 0:
            raise ValueError(f"{self._where}: batch_size must be positive; got {batch_size!r}")
        self._explicit_index = index_params is not None
        try:
            self._index_params = _normalise_index_params(index_params)
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None
        self._lite_path = os.path.abspath(self.uri) if is_lite_uri(self.uri) else None
        if self._lite_path and self._index_params["index_type"] in _LITE_MISSING:
            raise ValueError(f"{self._where}: Milvus Lite cannot build {self._index_params['index_type']}; "
                             "use FLAT, IVF_FLAT or HNSW locally, or a Milvus server")
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._dim: int | None = None
        self._created = False
        self._client = self._connect(token, timeout)
        try:
            if self._client.has_collection(collection):
                self._open_existing(dim)
            elif dim is not None:
                self._create(dim)
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------------------
    def _connect(self, token: str, timeout: float | None) -> MilvusClient:
        pymilvus = _pymilvus()
        if self._lite_path:
            parent = os.path.dirname(self._lite_path)
            if not os.path.isdir(parent):
                raise ConnectionError(f"cannot open {self._where}: directory {parent!r} does not exist")
            with _lite_lock:
                _lite_users[self._lite_path] = _lite_users.get(self._lite_path, 0) + 1
        try:
            return pymilvus.MilvusClient(uri=self.uri, token=token, timeout=timeout)
        except Exception as exc:
            self._release_lite()
            hint = (" (a Milvus Lite file is served by one process at a time: close the other"
                    " MilvusL2Index or client using it)" if self._lite_path else "")
            raise ConnectionError(f"cannot connect to {self._where}: {exc}{hint}") from exc

    def _release_lite(self) -> None:
        if not self._lite_path:
            return
        with _lite_lock:
            users = _lite_users.get(self._lite_path, 0) - 1
            if users > 0:
                _lite_users[self._lite_path] = users
                return
            _lite_users.pop(self._lite_path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(self._lite_path)

    def close(self) -> None:
        """Close the connection; for Milvus Lite, stop the embedded server once no index in this process uses the file.

        Stopping it releases the file so another process can open it; a raw ``MilvusClient`` on
        the same file in this process loses its server too.
        """
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        client.close()
        self._release_lite()

    def __enter__(self) -> MilvusL2Index:
        """The index itself; :meth:`close` runs on leaving the ``with`` block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the index."""
        self.close()

    def __repr__(self) -> str:
        """Where the index lives and how it searches."""
        return (f"MilvusL2Index(uri={self.uri!r}, collection={self.collection!r}, dim={self._dim}, "
                f"index_type={self._index_params['index_type']!r})")

    @property
    def _live(self) -> MilvusClient:
        if self._client is None:
            raise RuntimeError(f"{self._where}: the index is closed")
        return self._client

    # -- schema -----------------------------------------------------------------------------------
    def _create(self, dim: int) -> None:
        pymilvus = _pymilvus()
        client = self._live
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, pymilvus.DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field(VECTOR_FIELD, pymilvus.DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(METADATA_FIELD, pymilvus.DataType.JSON)
        index = client.prepare_index_params()
        index.add_index(field_name=VECTOR_FIELD, index_name=VECTOR_FIELD, metric_type="L2",
                        index_type=self._index_params["index_type"], params=self._index_params["params"])
        try:
            client.create_collection(self.collection, schema=schema, index_params=index,
                                     consistency_level="Strong")
        except Exception as exc:
            raise ValueError(f"cannot create {self._where} with {self._index_params}: {exc}") from exc
        self._dim, self._created = dim, True

    def _open_existing(self, dim: int | None) -> None:
        client = self._live
        fields = {f["name"]: f for f in client.describe_collection(self.collection)["fields"]}
        pymilvus = _pymilvus()
        expected = {ID_FIELD: pymilvus.DataType.VARCHAR, VECTOR_FIELD: pymilvus.DataType.FLOAT_VECTOR,
                    METADATA_FIELD: pymilvus.DataType.JSON}
        found = {name: getattr(f["type"], "name", f["type"]) for name, f in fields.items()}
        if (set(fields) != set(expected) or not fields[ID_FIELD].get("is_primary")
                or any(fields[name]["type"] != dtype for name, dtype in expected.items())):
            raise ValueError(f"{self._where} was not made by MilvusL2Index: expected fields id (VARCHAR "
                             f"primary key), vector (FLOAT_VECTOR), metadata (JSON); found {found}")
        stored_dim = int(fields[VECTOR_FIELD]["params"]["dim"])
        if dim is not None and dim != stored_dim:
            raise ValueError(f"{self._where} holds vectors of dimension {stored_dim}, not {dim}")
        names = client.list_indexes(self.collection, field_name=VECTOR_FIELD)
        if not names:
            raise ValueError(f"{self._where} has no index on field {VECTOR_FIELD!r}")
        info = client.describe_index(self.collection, names[0])
        metric, index_type = str(info.get("metric_type")).upper(), str(info.get("index_type")).upper()
        if metric != "L2":
            raise ValueError(f"{self._where} ranks by metric {metric}; MilvusL2Index needs an L2 collection")
        if self._explicit_index and index_type != self._index_params["index_type"]:
            raise ValueError(f"{self._where} already has a {index_type} index, not the requested "
                             f"{self._index_params['index_type']}")
        self._index_params["index_type"] = index_type
        client.load_collection(self.collection)
        self._dim, self._created = stored_dim, True

    # -- protocol -------------------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        """Vector dimension, or ``None`` before the first add."""
        return self._dim

    @property
    def count(self) -> int:
        """Number of stored vectors (exact, deletes included)."""
        with self._lock:
            if not self._created:
                return 0
            rows = self._live.query(self.collection, filter="", output_fields=["count(*)"],
                                    consistency_level="Strong")
            return int(rows[0]["count(*)"])

    def __len__(self) -> int:
        """:attr:`count`."""
        return self.count

    def add(self, ids: Sequence[str], vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any] | None] | None = None) -> None:
        """Store ``vectors`` (N, D) under ``ids`` (an existing id is replaced), in batches.

        ``metadata`` (one JSON-serialisable mapping per id, or ``None``) is stored in the JSON
        field that :meth:`search`'s ``filter`` reads; without it a row's metadata is ``{}``.
        """
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            arr = self._matrix(vectors, "vectors")
            if len(ids) != len(arr):
                raise ValueError(f"{self._where}: got {len(ids)} ids for {len(arr)} vectors")
            if len(set(ids)) != len(ids):
                raise ValueError(f"{self._where}: ids contain duplicates")
            if metadata is not None and len(metadata) != len(ids):
                raise ValueError(f"{self._where}: got {len(metadata)} metadata entries for {len(ids)} ids")
            if not ids:
                return
            if not self._created:
                self._create(arr.shape[1])
            metas = metadata if metadata is not None else [None] * len(ids)
            rows = [{ID_FIELD: i, VECTOR_FIELD: v, METADATA_FIELD: dict(m or {})}
                    for i, v, m in zip(ids, arr, metas)]
            client = self._live
            for batch in _batches(rows, self.batch_size):
                try:
                    client.upsert(self.collection, list(batch))
                except Exception as exc:
                    raise ValueError(f"{self._where}: upsert failed: {exc}") from exc

    def flush(self) -> None:
        """Seal buffered rows into segments so Milvus builds the index on them (call after a bulk add).

        Rows are searchable before this either way; until sealed, Milvus Lite scans them brute force.
        """
        with self._lock:
            if self._created:
                self._live.flush(self.collection)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were removed. Unknown ids raise ``KeyError`` (nothing removed)."""
        ids = list(dict.fromkeys(check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)))
        with self._lock:
            present = set(self._fetch(ids, [ID_FIELD]))
            missing = [i for i in ids if i not in present]
            if missing:
                raise KeyError(f"{self._where}: {len(missing)} unknown id(s), nothing removed: {missing[:5]!r}")
            for batch in _batches(ids, _QUERY_BATCH):
                self._live.delete(self.collection, filter=_id_expression(batch))
            return len(ids)

    def search(self, queries: np.ndarray, k: int,
               filter: object = None) -> tuple[list[list[str | None]], np.ndarray]:
        """The ``k`` nearest ids and Euclidean (not squared) distances per query row, nearest first.

        Rows with fewer than ``k`` (matching) stored vectors are padded with ``None`` ids and
        ``inf`` distances. ``filter`` narrows the search inside Milvus: a Milvus boolean
        expression string (used as is), or a ragcun filter spec on the stored metadata, translated
        by :func:`translate_filter` into a superset of its matches (exact for comparisons,
        ``$in``/``$nin``, ``$any``/``$all`` and their ``$and``/``$or``/``$not``), so apply the
        spec's predicate to the hits too.
        """
        k = check_k(k, f"{self._where}: k")
        if k > MAX_TOPK:
            raise ValueError(f"{self._where}: Milvus returns at most {MAX_TOPK} neighbours per query; got k={k}")
        expression = filter if isinstance(filter, str) else milvus_filter_expression(filter)
        with self._lock:
            q = self._matrix(queries, "queries")
            out_ids, out_d = padded_result(len(q), k)
            if not self._created:
                return out_ids, out_d
            client = self._live
            params = {"metric_type": "L2", "params": self._index_params["search_params"]}
            step = _SEARCH_BATCH
            if self._lite_path and len(q) > 1:
                step = max(1, min(step, _LITE_SEARCH_BYTES // (4 * self._dim * max(1, self.count))))
            for start in range(0, len(q), step):
                try:
                    hits = client.search(self.collection, data=list(q[start:start + step]),
                                             limit=int(k), filter=expression, output_fields=[ID_FIELD],
                                             search_params=params, anns_field=VECTOR_FIELD,
                                             consistency_level="Strong")
                except Exception as exc:
                    raise ValueError(f"{self._where}: search failed (filter {expression!r}): {exc}") from exc
                for row, row_hits in enumerate(hits, start):
                    for j, hit in enumerate(row_hits):
                        out_ids[row][j] = hit["id"]
                        out_d[row, j] = math.sqrt(max(float(hit["distance"]), 0.0))
            return out_ids, out_d

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors for ``ids``, in order; unknown ids raise ``KeyError``."""
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            found = self._fetch(list(dict.fromkeys(ids)), [VECTOR_FIELD])
            missing = [i for i in ids if i not in found]
            if missing:
                raise KeyError(f"{self._where}: {len(missing)} unknown id(s): {missing[:5]!r}")
            if self._dim is None:
                return np.zeros((0, 0), dtype=np.float32)
            if not ids:
                return np.zeros((0, self._dim), dtype=np.float32)
            return np.asarray([found[i][VECTOR_FIELD] for i in ids], dtype=np.float32)

    def get_metadata(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored metadata for ``ids``, in order; unknown ids raise ``KeyError``."""
        ids = check_ids(ids, f"{self._where}: ids", MAX_ID_BYTES)
        with self._lock:
            found = self._fetch(list(dict.fromkeys(ids)), [METADATA_FIELD])
            missing = [i for i in ids if i not in found]
            if missing:
                raise KeyError(f"{self._where}: {len(missing)} unknown id(s): {missing[:5]!r}")
            return [dict(found[i][METADATA_FIELD] or {}) for i in ids]

    # -- helpers --------------------------------------------------------------------------------
    def _matrix(self, vectors: object, what: str) -> np.ndarray:
        try:
            return as_matrix(vectors, self._dim, what)
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None

    def _fetch(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows (``fields`` plus ``id``) of those ``ids`` that exist, keyed by id."""
        if not self._created or not ids:
            return {}
        rows: dict[str, dict[str, Any]] = {}
        for batch in _batches(ids, _QUERY_BATCH):
            for row in self._live.query(self.collection, filter=_id_expression(batch),
                                        output_fields=[ID_FIELD, *fields], consistency_level="Strong"):
                rows[row[ID_FIELD]] = row
        return rows


_COMPARISONS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_Translation = tuple[str | None, bool]  # (expression, or None for "no constraint"; exact)
_ANYTHING: _Translation = (None, False)  # no constraint: a superset of whatever the filter keeps


def _literal(value: object) -> str | None:
    """``value`` as a Milvus literal, or ``None`` when it is not a scalar Milvus compares like Python."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2 ** 63) <= value < 2 ** 63 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return quote(value)
    return None


def _atom(path: str, op: str, want: object) -> _Translation:
    """One ``{key: {op: want}}`` test; exact ones are two-valued (never null), so ``not`` keeps them exact."""
    if op in ("$exists", "$nin", "$in", "$any", "$all"):
        if op == "$exists":  # Milvus cannot tell a JSON null from a missing key: `not exists` keeps both
            return (f"(not exists {path})", False) if not want else _ANYTHING
        items = list(want)
        if op == "$nin":
            parts = [_atom(path, "$ne", w) for w in items]
            return _conjoin(parts) if parts else (None, True)
        if op == "$in":
            return _disjoin([_atom(path, "$eq", w) for w in items]) if items else _ANYTHING
        literals = [_literal(w) for w in items]
        if not items or None in literals:
            return _ANYTHING
        function = "json_contains_any" if op == "$any" else "json_contains_all"
        return f"(exists {path} and {function}({path}, [{', '.join(literals)}]))", True
    literal = _literal(want)
    if (literal is None or op == "$text_match" or (op == "$contains" and isinstance(want, str))
            or (op in ("$gt", "$gte", "$lt", "$lte") and isinstance(want, bool))):
        return _ANYTHING  # substring tests, ordering by booleans and non-scalar values: left to the caller
    if op == "$ne":
        return f"(not exists {path} or {path} != {literal})", True
    if op == "$contains":
        literal = f"({literal})" if literal.startswith("-") else literal  # Milvus Lite's parser needs the parens
        return f"(exists {path} and json_contains({path}, {literal}))", True
    # an ordering test on a value of another type is null in Milvus (False in Python), so its
    # negation would drop rows Python keeps: report it inexact and `$not` leaves it to the caller
    return f"(exists {path} and {path} {_COMPARISONS[op]} {literal})", op == "$eq"


def _conjoin(parts: list[_Translation]) -> _Translation:
    exprs = [e for e, _ in parts if e is not None]
    exact = all(x for _, x in parts)
    if not exprs:
        return None, exact
    return (exprs[0] if len(exprs) == 1 else "(" + " and ".join(exprs) + ")"), exact


def _disjoin(parts: list[_Translation]) -> _Translation:
    if not parts:
        return _ANYTHING
    if any(e is None for e, _ in parts):
        return None, any(e is None and x for e, x in parts)
    exprs = [e for e, _ in parts]
    return (exprs[0] if len(exprs) == 1 else "(" + " or ".join(exprs) + ")"), all(x for _, x in parts)


def _translate(spec: object) -> _Translation:
    if spec is None:
        return None, True
    if callable(spec):
        return _ANYTHING
    parts: list[_Translation] = []
    for key, cond in spec.items():
        if key in ("$and", "$or"):
            subs = [_translate(s) for s in cond]
            parts.append(_conjoin(subs) if key == "$and" else _disjoin(subs))
        elif key == "$not":
            expr, exact = _translate(cond)
            parts.append((f"(not {expr})", True) if exact and expr is not None else _ANYTHING)
        else:
            path = f"{METADATA_FIELD}[{quote(str(key))}]"
            if isinstance(cond, Mapping) and cond and all(str(op).startswith("$") for op in cond):
                parts.append(_conjoin([_atom(path, op, want) for op, want in cond.items()]))
            else:
                parts.append(_atom(path, "$eq", cond))
    return _conjoin(parts)


def translate_filter(spec: object) -> tuple[str, bool]:
    """A ragcun filter spec (see :mod:`ragcun.filters`) as ``(milvus_expression, exact)``.

    The expression tests the JSON ``metadata`` field and keeps every row the spec keeps (``""``
    keeps all). ``exact`` says it keeps no others, under negation too; where Milvus cannot match
    Python's semantics (substring ``$contains`` / ``$text_match``, ``$exists``, ``None``, list or
    dict values, callables, a negated ``$gt``-style ordering) that part is widened, so callers
    apply the spec's predicate to the hits as well.
    Invalid specs raise the errors :func:`ragcun.filters.compile_filter` raises.
    """
    compile_filter(spec)
    expr, exact = _translate(spec)
    return expr or "", exact


def milvus_filter_expression(spec: object) -> str:
    """The Milvus expression of :func:`translate_filter` (a superset of the spec's matches; ``""`` = all)."""
    return translate_filter(spec)[0]
