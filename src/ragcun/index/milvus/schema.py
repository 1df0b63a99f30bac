"""The collection ``MilvusL2Index`` keeps: its fields, creating it, and checking one that exists.

Fields: a VARCHAR primary key ``id``, a FLOAT_VECTOR ``vector`` under an L2 index, a JSON
``metadata`` and, for lexical search, an analysed VARCHAR (``stems`` or ``text``, see
:mod:`ragcun.index.milvus.text`) feeding Milvus's BM25 function into a SPARSE_FLOAT_VECTOR
``sparse`` under a BM25 index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcun.index.milvus.client import pymilvus_module
from ragcun.index.milvus.filters import ID_FIELD, METADATA_FIELD
from ragcun.index.milvus.text import MAX_TEXT_BYTES, STEMS_FIELD, TEXT_FIELD

if TYPE_CHECKING:
    from pymilvus import MilvusClient

VECTOR_FIELD = "vector"
SPARSE_FIELD = "sparse"
BM25_FUNCTION = "bm25"
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}
"""BM25 saturation and length normalisation, as ``bm25s``'s and Lucene's defaults."""
MAX_ID_BYTES = MAX_TEXT_BYTES
"""Milvus's largest VARCHAR, the longest id (in UTF-8 bytes) this index stores."""
INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW", "IVF_PQ")
"""Milvus index types accepted in ``index_params["index_type"]``."""
LITE_MISSING = frozenset({"IVF_PQ"})
"""Index types Milvus Lite 3.x accepts but never builds (NotImplementedError)."""
def normalise_index_params(index_params: Mapping[str, Any] | None) -> dict[str, Any]:
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


def create_collection(client: MilvusClient, collection: str, dim: int, index_params: Mapping[str, Any],
                      text: str | None, analyzer: Mapping[str, Any], where: str) -> None:
    """Create ``collection`` for ``dim``-d vectors under ``index_params`` (:func:`normalise_index_params`), with
    the text field ``text`` analysed by ``analyzer`` (``text`` ``None``: no lexical side)."""
    pymilvus = pymilvus_module()
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID_FIELD, pymilvus.DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
    schema.add_field(VECTOR_FIELD, pymilvus.DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(METADATA_FIELD, pymilvus.DataType.JSON)
    index = client.prepare_index_params()
    index.add_index(field_name=VECTOR_FIELD, index_name=VECTOR_FIELD, metric_type="L2",
                    index_type=index_params["index_type"], params=index_params["params"])
    if text is not None:
        schema.add_field(text, pymilvus.DataType.VARCHAR, max_length=MAX_TEXT_BYTES,
                         enable_analyzer=True, analyzer_params=dict(analyzer))
        schema.add_field(SPARSE_FIELD, pymilvus.DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(pymilvus.Function(name=BM25_FUNCTION, function_type=pymilvus.FunctionType.BM25,
                                              input_field_names=[text], output_field_names=[SPARSE_FIELD]))
        index.add_index(field_name=SPARSE_FIELD, index_name=SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX",
                        metric_type="BM25", params=dict(BM25_PARAMS))
    try:
        client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")
    except Exception as exc:
        raise ValueError(f"cannot create {where} with {dict(index_params)}"
                         f"{f' and analyzer {dict(analyzer)}' if text else ''}: {exc}") from exc


@dataclass(frozen=True)
class Layout:
    """What an existing collection holds: its vectors' dimension and index type, and its text analysis."""

    dim: int
    index_type: str
    text: str | None
    """The text field's name (``stems`` or ``text``); ``None``: no lexical side."""
    analyzer: dict[str, Any]


def open_collection(client: MilvusClient, collection: str, where: str, *, dim: int | None,
                    index_type: str | None, analysis: tuple[str | None, Mapping[str, Any]] | None) -> Layout:
    """Check that ``collection`` was made by ``MilvusL2Index`` and load it; its :class:`Layout`.

    ``dim``, ``index_type`` and ``analysis`` (text field and analyzer), where not ``None``, are what the
    caller asked for: a collection that differs raises ``ValueError`` naming both.
    """
    described = client.describe_collection(collection)
    fields = {f["name"]: f for f in described["fields"]}
    pymilvus = pymilvus_module()
    expected = {ID_FIELD: pymilvus.DataType.VARCHAR, VECTOR_FIELD: pymilvus.DataType.FLOAT_VECTOR,
                METADATA_FIELD: pymilvus.DataType.JSON}
    text_field = next((f for f in (STEMS_FIELD, TEXT_FIELD) if f in fields), None)
    if text_field or SPARSE_FIELD in fields:
        expected |= {text_field or TEXT_FIELD: pymilvus.DataType.VARCHAR,
                     SPARSE_FIELD: pymilvus.DataType.SPARSE_FLOAT_VECTOR}
    found = {name: getattr(f["type"], "name", f["type"]) for name, f in fields.items()}
    if (set(fields) != set(expected) or not fields[ID_FIELD].get("is_primary")
            or any(fields[name]["type"] != dtype for name, dtype in expected.items())):
        raise ValueError(f"{where} was not made by MilvusL2Index: expected fields id (VARCHAR "
                         f"primary key), vector (FLOAT_VECTOR), metadata (JSON) and optionally stems or "
                         f"text (VARCHAR) with sparse (SPARSE_FLOAT_VECTOR); found {found}")
    stored_dim = int(fields[VECTOR_FIELD]["params"]["dim"])
    if dim is not None and dim != stored_dim:
        raise ValueError(f"{where} holds vectors of dimension {stored_dim}, not {dim}")
    info = _index_info(client, collection, VECTOR_FIELD, where)
    metric, stored_type = str(info.get("metric_type")).upper(), str(info.get("index_type")).upper()
    if metric != "L2":
        raise ValueError(f"{where} ranks by metric {metric}; MilvusL2Index needs an L2 collection")
    if index_type is not None and stored_type != index_type:
        raise ValueError(f"{where} already has a {stored_type} index, not the requested {index_type}")
    text, analyzer = _text_analysis(client, collection, where, fields.get(text_field or ""),
                                    described.get("functions") or [], analysis)
    client.load_collection(collection)
    return Layout(stored_dim, stored_type, text, analyzer)


def _text_analysis(client: MilvusClient, collection: str, where: str, field: Mapping[str, Any] | None,
                   functions: Sequence[Mapping[str, Any]],
                   requested: tuple[str | None, Mapping[str, Any]] | None) -> tuple[str | None, dict[str, Any]]:
    """The text field and analyzer of an existing collection (``None``, ``{}``: it has no text field)."""
    if field is None:
        return None, {}
    params = field.get("params") or {}
    analyzer = params.get("analyzer_params") or "{}"
    analyzer = json.loads(analyzer) if isinstance(analyzer, str) else dict(analyzer)
    mode = field["name"]
    bm25 = [f for f in functions if getattr(f.get("type"), "name", f.get("type")) == "BM25"
            and list(f.get("input_field_names") or []) == [mode]
            and list(f.get("output_field_names") or []) == [SPARSE_FIELD]]
    if not bm25 or str(_index_info(client, collection, SPARSE_FIELD, where).get("metric_type")).upper() != "BM25":
        raise ValueError(f"{where} was not made by MilvusL2Index: its {mode!r} field has no BM25 "
                         "function into 'sparse' or no BM25 index")
    if requested is not None and (mode, analyzer) != requested:
        raise ValueError(f"{where} analyses texts with {analyzer} ({mode}), not the requested "
                         f"{requested[1]}; its analysis is fixed when the collection is created")
    return mode, analyzer


def _index_info(client: MilvusClient, collection: str, field: str, where: str) -> dict[str, Any]:
    names = client.list_indexes(collection, field_name=field)
    if not names:
        raise ValueError(f"{where} has no index on field {field!r}")
    return dict(client.describe_index(collection, names[0]))
