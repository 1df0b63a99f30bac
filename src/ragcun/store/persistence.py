"""Saving and loading a ``DocStore``: one checksummed directory (:mod:`ragcun.io.saves`).

A save holds the records (``records.json``), the scorer state and calibrator (in the manifest), the
lexical index (``lexical/``) and, where the vector index can save itself, the vectors (``index/``).
The manifest checksums every file, nested ones included, and the files that only make sense together
carry each other's checksum (``postings.safetensors`` that of ``lexical.json``, ``ids.json`` that of
``index.faiss``), so no file of another save can be swapped in unnoticed. The framework adapters record
their name in the ``extra`` dict (:data:`FRAMEWORK_KEY`) and map the other framework's records on load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.index.protocol import DirectoryIndex, MetadataIndex, VectorIndex
from ragcun.io.saves import MANIFEST, SaveFormatError, atomic_save, read_json, read_save
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.distance_law import DistanceLawScorer
from ragcun.store.hits import Record

if TYPE_CHECKING:
    from ragcun.store.doc_store import DocStore

FORMAT = "ragcun.DocStore"
VERSION = 1
LEXICAL_DIR = "lexical"
MANIFEST_FIELDS = {"dim": (int, type(None)), "count": (int,), "index_saved": (bool,), "scorer": (dict,),
                   "extra": (dict,)}
FRAMEWORK_KEY = "framework"
"""The key of a save's ``extra`` dict under which a framework adapter records its name (``"langchain"``, ``"llama_index"``)."""
RecordsConverter = Callable[[list[Record], dict[str, Any]], list[Record]]
"""Maps a save's records (given its ``extra`` dict) onto those a store holds, same ids and texts in the same order:
how a framework adapter loads another framework's save."""


def save_store(store: DocStore, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Atomically save ``store`` to ``path`` with the user's ``extra`` dict; returns the save directory."""
    with store._lock.read():
        def write(tmp: Path) -> dict:
            saves_index = store.index.capabilities.saves_to_dir
            if saves_index:
                cast(DirectoryIndex, store.index).save(tmp / "index")
            if store.lexical is not None:
                store.lexical.save(tmp / LEXICAL_DIR)
            (tmp / "records.json").write_text(json.dumps(
                [[r.id, r.text, r.metadata] for r in store._records.values()]), encoding="utf-8")
            fields = {"dim": store.index.dim, "count": len(store._records), "index_saved": saves_index,
                      "scorer": store.scorer.to_dict(), "extra": extra or {}}
            return fields if store.calibrator is None else {**fields, "calibrator": store.calibrator.to_dict()}
        return atomic_save(path, FORMAT, VERSION, write)


def load_store(cls: type[DocStore], path: str | os.PathLike, index: VectorIndex | None = None,
               convert: RecordsConverter | None = None) -> tuple[DocStore, dict[str, Any]]:
    """Load a :func:`save_store` directory (verified) as a ``cls``; returns the store and its ``extra`` dict.

    ``index`` supplies the vectors for saves of indexes that persist themselves (e.g. Milvus); it
    must have the saved dimension and hold every saved id (else ``SaveFormatError``). On an index with
    ``capabilities.metadata_filter``, any metadata it holds that differ from the saved records' (e.g.
    written before metadata were pushed down) are re-stored from them. The lexical index is read back
    and checked against the records (a save without one is re-indexed from the records' texts). ``convert``
    maps the saved records onto those the store holds (:data:`RecordsConverter`), before any of these checks.
    """
    path, man = read_save(path, FORMAT, VERSION, MANIFEST_FIELDS)
    given = index is not None
    if index is None:
        if not man["index_saved"]:
            raise ValueError(f"{path}: the index was not saved here; pass the index= it lives in")
        index = L2Index.load(path / "index", dim=man["dim"])
    try:
        scorer = DistanceLawScorer.from_dict(man["scorer"])
        saved = man.get("calibrator")  # written only for a store with a calibrator
        calibrator = None if saved is None else RelevanceCalibrator.from_dict(saved, "calibrator")
    except ValueError as exc:
        raise SaveFormatError(f"{path / MANIFEST}: {exc}") from None
    lexical = None
    if f"{LEXICAL_DIR}/{BM25Index.META}" in man["files"] and not index.capabilities.lexical:
        try:
            lexical = BM25Index.load(path / LEXICAL_DIR)
        except (ValueError, KeyError, OSError) as exc:
            raise SaveFormatError(f"{path / LEXICAL_DIR}: unreadable lexical index ({exc})") from exc
    store = cls(index, scorer, lexical, calibrator)
    rows = read_json(path / "records.json")
    records = [Record(i, t, m) for i, t, m in rows]
    if convert is not None:
        records = _converted(records, convert, man["extra"])
    store._records = {r.id: r for r in records}
    if store.lexical is not None:
        if lexical is None:
            store.lexical.add(list(store._records), [r.text for r in store._records.values()])
        elif any(i not in store._records for i in lexical.ids):
            raise SaveFormatError(f"{path / LEXICAL_DIR}: indexes ids that are not among the saved records")
    if len(store._records) != man["count"] or index.count != man["count"]:
        raise SaveFormatError(f"{path}: {len(store._records)} records and {index.count} vectors, "
                              f"manifest says {man['count']}")
    if given and store._records and index.dim != man["dim"]:
        raise SaveFormatError(f"{path}: the index has dimension {index.dim}, the save {man['dim']}")
    if store._pushdown:
        _sync_index_metadata(store, path)
    elif given:
        _check_index_holds(store, path)
    return store, man["extra"]


def _converted(records: list[Record], convert: RecordsConverter, extra: dict[str, Any]) -> list[Record]:
    """``convert(records, extra)``, checked to keep every record's id and text in order (``ValueError`` if not)."""
    out = convert(records, extra)
    if [(r.id, r.text) for r in out] != [(r.id, r.text) for r in records]:
        raise ValueError("a records converter must keep every record's id and text, in order")
    return out


def _check_index_holds(store: DocStore, path: Path, batch: int = 10_000) -> None:
    """``SaveFormatError`` unless the index holds every saved id (read back in batches)."""
    ids = list(store._records)
    for start in range(0, len(ids), batch):
        try:
            store.index.get_vectors(ids[start:start + batch])
        except KeyError as exc:
            raise SaveFormatError(f"{path}: saved records are missing from the index: {exc}") from None


def _sync_index_metadata(store: DocStore, path: Path, batch: int = 10_000) -> None:
    """Re-store the records' metadata where the index's copy differs; a missing id is a ``SaveFormatError``."""
    ids = list(store._records)
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        try:
            held = cast(MetadataIndex, store.index).get_metadata(chunk)
        except KeyError as exc:
            raise SaveFormatError(f"{path}: saved records are missing from the index: {exc}") from None
        stale = [i for i, m in zip(chunk, held) if m != store._records[i].metadata]
        if stale:
            store._index_add([store._records[i] for i in stale], store.index.get_vectors(stale))
