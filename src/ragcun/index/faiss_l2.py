"""``L2Index``: string-keyed Euclidean search on FAISS (exact ``IndexFlatL2`` by default).

Approximate indexes come from FAISS ``index_factory`` strings (``"HNSW32"``, ``"IVF256,Flat"``,
``"IVF256,PQ32"``). An index that needs training collects vectors in an exact flat index until
``train_size`` have arrived, then trains on them and moves over. Indexes that cannot delete in
place (HNSW, IVF) hide removed vectors and rebuild once more than half of what they hold is dead.
Searches share a readers-writer lock (:class:`ragcun.io.rwlock.RWLock`) and run in parallel (FAISS
releases the GIL); adds, removes and other changes take it exclusively.

``factory="auto"`` (what :class:`ragcun.DocStore` uses by default) is exact below a size threshold and
approximate above it: see :class:`L2Index` and ``docs/scaling.md`` for the measurements behind it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from ragcun.index.protocol import IndexCapabilities, as_matrix, check_ids, check_k, l2_distances, padded_result
from ragcun.io.rwlock import RWLock
from ragcun.io.saves import SaveFormatError, atomic_save, file_sha256, read_json, read_save

FORMAT = "ragcun.L2Index"
VERSION = 1
_OPT_INT = (int, type(None))
AUTO = "auto"
AUTO_THRESHOLD = 50_000
"""``factory="auto"``: stores with fewer live vectors than this are searched exactly (``Flat``)."""
AUTO_FACTORY = "HNSW32"
"""``factory="auto"``: the index built (from the live vectors) once a store reaches the threshold."""
AUTO_EF_SEARCH = 128
"""``factory="auto"``: HNSW ``efSearch`` unless ``ef_search`` is given."""
AUTO_NPROBE = 32
"""``factory="auto"``: IVF ``nprobe`` unless ``nprobe`` is given."""
_MIN_COMPACT = 1024  # a flat index renumbers its keys once removed ones outnumber live ones by this many
MANIFEST_FIELDS = {"dim": _OPT_INT, "count": (int,), "factory": (str,), "trained": (bool,), "train_size": _OPT_INT,
                   "ef_search": _OPT_INT, "nprobe": _OPT_INT}


class L2Index:
    """String-keyed vectors searched by Euclidean distance on FAISS; implements ``VectorIndex``.

    ``factory`` is a FAISS ``index_factory`` string (default ``"Flat"``: exact search) or ``"auto"``.
    ``train_size`` is how many vectors an index that needs training waits for (default 40 per IVF
    list, else 1000; at least 10000 for PQ). ``ef_search`` / ``nprobe`` tune HNSW / IVF search. Thread-safe:
    searches (and other reads) run in parallel, while a thread adding or removing excludes them.

    ``factory="auto"`` (the default of :class:`ragcun.DocStore` and the framework stores) searches
    exactly while the index holds fewer than ``threshold`` live vectors (default
    :data:`AUTO_THRESHOLD`), then, inside the add that reaches it, builds ``auto_factory`` (default
    :data:`AUTO_FACTORY`, ``efSearch`` :data:`AUTO_EF_SEARCH`; an IVF one is trained on all live
    vectors) and searches that from then on; a store that shrinks below the threshold goes back to
    exact at its next rebuild. Both settings are saved with the index. Measured trade-offs (recall,
    nDCG, speed, memory at 100k real passages): ``docs/scaling.md``.
    """

    capabilities = IndexCapabilities(saves_to_dir=True)

    def __init__(self, dim: int | None = None, factory: str = "Flat", *, train_size: int | None = None,
                 ef_search: int | None = None, nprobe: int | None = None, threshold: int = AUTO_THRESHOLD,
                 auto_factory: str = AUTO_FACTORY) -> None:
        if dim is not None and (not isinstance(dim, int) or dim <= 0):
            raise ValueError(f"dim must be a positive int or None; got {dim!r}")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ValueError(f"threshold must be a positive int; got {threshold!r}")
        if not isinstance(auto_factory, str) or auto_factory == AUTO:
            raise ValueError(f"auto_factory must be a FAISS factory string; got {auto_factory!r}")
        self.factory = factory
        self.threshold = threshold
        self.auto_factory = auto_factory
        auto = factory == AUTO
        self.ef_search = AUTO_EF_SEARCH if auto and ef_search is None else ef_search
        self.nprobe = AUTO_NPROBE if auto and nprobe is None else nprobe
        self.train_size = train_size
        self._lock = RWLock()
        self._dim = dim
        self._index: faiss.IndexIDMap2 | None = None
        self._trained = False
        self._str2int: dict[str, int] = {}
        self._int2str: list[str | None] = []  # FAISS key -> id (None once removed); keys are 0, 1, 2, ...
        self._dead: set[int] = set()  # removed keys still inside the FAISS index (hidden until a rebuild)
        self._target_trains: bool | None = None  # whether the target index needs training; found on first need
        if dim is not None:
            self._create(dim)

    # -- construction -------------------------------------------------------------------------
    @property
    def target_factory(self) -> str:
        """The FAISS factory string searched once trained / past the threshold (``auto_factory`` for ``"auto"``)."""
        return self.auto_factory if self.factory == AUTO else self.factory

    @property
    def approximate(self) -> bool:
        """Whether searches currently go through an approximate index (not an exact flat one)."""
        return self._index is not None and not isinstance(faiss.downcast_index(self._index.index), faiss.IndexFlat)

    def _switch_size(self) -> int:
        """Live vectors at which a collecting (flat) index moves to its target (0: it never collects)."""
        assert self._dim is not None and self.train_size is not None  # set by _create
        if self._target_trains is None:
            self._target_trains = not self._target(self._dim).is_trained
        needed = self.train_size if self._target_trains else 0
        return max(self.threshold, needed) if self.factory == AUTO else needed

    def _target(self, dim: int) -> faiss.Index:
        try:
            inner = faiss.index_factory(dim, self.target_factory, faiss.METRIC_L2)
        except RuntimeError as exc:
            raise ValueError(f"invalid FAISS factory string {self.target_factory!r}: {exc}") from exc
        if self.ef_search is not None and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = self.ef_search
        return inner

    def _create(self, dim: int) -> None:
        self._dim = dim
        target = self._target(dim)
        if self.train_size is None:
            ivf = faiss.try_extract_index_ivf(target)
            self.train_size = max(40 * ivf.nlist if ivf is not None else 1000,
                                  10_000 if "PQ" in self.target_factory.upper() else 0)
        self._trained = target.is_trained and self.factory != AUTO
        self._index = faiss.IndexIDMap2(target if self._trained else faiss.IndexFlatL2(dim))
        self._configure()

    def _configure(self) -> None:
        assert self._index is not None, "configured only once the FAISS index exists"
        inner = faiss.downcast_index(self._index.index)
        ivf = faiss.try_extract_index_ivf(inner)
        if ivf is not None:
            ivf.make_direct_map()
            if self.nprobe is not None:
                ivf.nprobe = self.nprobe
        if self.ef_search is not None and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = self.ef_search

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change HNSW ``efSearch`` / IVF ``nprobe`` (recall vs speed) on a live index."""
        with self._lock.write():
            if ef_search is not None:
                self.ef_search = ef_search
            if nprobe is not None:
                self.nprobe = nprobe
            if self._index is not None:
                self._configure()

    @property
    def dim(self) -> int | None:
        """Vector dimension, or ``None`` before the first add."""
        return self._dim

    @property
    def count(self) -> int:
        """Number of stored (live) vectors."""
        return len(self._str2int)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: object) -> bool:
        return key in self._str2int

    @property
    def ids(self) -> list[str]:
        """The stored ids, in insertion order."""
        with self._lock.read():
            return [i for i in self._int2str if i is not None]

    # -- mutation -----------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (N, D) under ``ids``; an existing id is replaced."""
        ids = check_ids(ids)
        with self._lock.write():
            arr = as_matrix(vectors, self._dim)
            if len(ids) != len(arr):
                raise ValueError(f"got {len(ids)} ids for {len(arr)} vectors")
            if len(set(ids)) != len(ids):
                raise ValueError("ids contain duplicates")
            if not ids:
                return
            if self._index is None:
                self._create(arr.shape[1])
            assert self._index is not None and self.train_size is not None  # set by _create
            self._drop([i for i in ids if i in self._str2int])
            first = len(self._int2str)
            self._index.add_with_ids(arr, np.arange(first, first + len(ids), dtype=np.int64))
            self._int2str.extend(ids)
            self._str2int.update(zip(ids, range(first, first + len(ids))))
            if not self._trained and self.count >= self._switch_size():
                self._rebuild()

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were removed. Unknown ids raise ``KeyError`` (nothing removed)."""
        ids = check_ids(ids)
        with self._lock.write():
            missing = [i for i in ids if i not in self._str2int]
            if missing:
                raise KeyError(f"unknown ids: {missing[:5]!r}")
            unique = list(dict.fromkeys(ids))
            self._drop(unique)
            return len(unique)

    def clear(self) -> None:
        """Remove every vector (the dimension and factory are kept)."""
        with self._lock.write():
            self._str2int.clear()
            self._int2str = []
            self._dead.clear()
            if self._dim is not None:
                self._create(self._dim)

    def _drop(self, ids: list[str]) -> None:
        if not ids:
            return
        assert self._index is not None  # ids are stored, so the FAISS index exists
        keys = [self._str2int.pop(i) for i in ids]
        for key in keys:
            self._int2str[key] = None
        if isinstance(faiss.downcast_index(self._index.index), faiss.IndexFlat):
            # faiss's Python wrapper accepts an id array; its SWIG signature names only IDSelector
            self._index.remove_ids(np.asarray(keys, dtype=np.int64))  # type: ignore[arg-type]
            if len(self._int2str) > 2 * self.count + _MIN_COMPACT:  # mostly removed keys: renumber
                self._rebuild()
        else:
            self._dead.update(keys)
            if len(self._dead) > self.count:
                self._rebuild()

    def _rebuild(self) -> None:
        """Re-create the FAISS index from the live vectors (renumbered 0, 1, ...), training it if it needs to be."""
        assert self._dim is not None and self.train_size is not None  # set by _create
        live = [(k, s) for k, s in enumerate(self._int2str) if s is not None]
        vecs = self._reconstruct(np.asarray([k for k, _ in live], dtype=np.int64))
        keys = np.arange(len(live), dtype=np.int64)
        target = self._target(self._dim)
        if len(keys) < self._switch_size():
            target = faiss.IndexFlatL2(self._dim)
        elif not target.is_trained:
            try:
                target.train(vecs)
            except RuntimeError as exc:
                raise ValueError(f"cannot train FAISS {self.target_factory!r} on {len(keys)} vectors "
                                 f"(raise train_size): {str(exc).splitlines()[0]}") from exc
        self._trained = not isinstance(target, faiss.IndexFlat) or self.target_factory == "Flat"
        self._index = faiss.IndexIDMap2(target)
        self._configure()
        self._dead.clear()
        self._int2str = [s for _, s in live]
        self._str2int = {s: k for k, (_, s) in enumerate(live)}
        if len(keys):
            self._index.add_with_ids(vecs, keys)

    def _reconstruct(self, keys: np.ndarray) -> np.ndarray:
        assert self._index is not None and self._dim is not None  # called only once vectors exist
        if len(keys) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(keys), dtype=np.float32).reshape(len(keys), self._dim)

    # -- queries ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str | None]], np.ndarray]:
        """The ``k`` nearest ids and Euclidean (not squared) distances per query row, nearest first.

        Rows with fewer than ``k`` stored vectors are padded with ``None`` ids and ``inf`` distances.
        """
        k = check_k(k)
        with self._lock.read():  # held until keys are mapped to ids: a remove meanwhile would drop them
            q = as_matrix(queries, self._dim, "queries")
            out_ids, out_d = padded_result(len(q), k)
            if self.count == 0:
                return out_ids, out_d
            assert self._index is not None  # vectors are stored, so the FAISS index exists
            fetch = min(k + len(self._dead), self._index.ntotal)
            sq, keys = self._index.search(q, fetch)
            dist = np.sqrt(np.maximum(sq, 0.0))
            names = self._int2str
            for row in range(len(q)):
                live = [(names[key], j) for j, key in enumerate(keys[row].tolist()) if key >= 0 and names[key] is not None]
                live = live[:k]
                out_ids[row][:len(live)] = [sid for sid, _ in live]
                out_d[row, :len(live)] = dist[row, [j for _, j in live]]
        return out_ids, out_d

    def distances(self, query: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """Euclidean distances (float32) from one ``query`` to the stored vectors of ``ids``, in order (from the
        reconstructed vectors: exact, approximate for PQ indexes); unknown ids raise ``KeyError``."""
        ids = check_ids(ids)
        with self._lock.read():
            q = as_matrix(query, self._dim, "query vector")
            if len(q) != 1:
                raise ValueError(f"distances take one query vector; got {len(q)}")
            vectors = self._vectors(ids)
            return l2_distances(q, vectors) if ids else np.zeros(0, dtype=np.float32)

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors for ``ids`` (approximate for PQ indexes); unknown ids raise ``KeyError``."""
        ids = check_ids(ids)
        with self._lock.read():
            return self._vectors(ids)

    def _vectors(self, ids: list[str]) -> np.ndarray:
        """:meth:`get_vectors` under the caller's lock."""
        missing = [i for i in ids if i not in self._str2int]
        if missing:
            raise KeyError(f"unknown ids: {missing[:5]!r}")
        if self._dim is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self._reconstruct(np.asarray([self._str2int[i] for i in ids], dtype=np.int64))

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Atomically save to directory ``path``: ``index.faiss`` (FAISS's own format), ``ids.json`` (bound to
        it by its SHA-256, ``index_sha256``), manifest."""
        with self._lock.read():
            def write(tmp: Path) -> dict:
                digest = None
                if self._index is not None:
                    faiss.write_index(self._index, str(tmp / "index.faiss"))
                    digest = file_sha256(tmp / "index.faiss")
                pairs = [(k, s) for k, s in enumerate(self._int2str) if s is not None]
                (tmp / "ids.json").write_text(json.dumps(
                    {"keys": [k for k, _ in pairs], "ids": [s for _, s in pairs], "index_sha256": digest,
                     "dead": sorted(self._dead), "next": len(self._int2str),
                     "auto": {"threshold": self.threshold, "factory": self.auto_factory}}), encoding="utf-8")
                return {"dim": self._dim, "count": self.count, "factory": self.factory,
                        "trained": self._trained, "train_size": self.train_size,
                        "ef_search": self.ef_search, "nprobe": self.nprobe}
            return atomic_save(path, FORMAT, VERSION, write)

    @classmethod
    def load(cls, path: str | os.PathLike, dim: int | None = None) -> L2Index:
        """Load a directory written by :meth:`save`, verifying its manifest and that ``ids.json`` was written
        with the ``index.faiss`` beside it; ``dim`` if given must match."""
        path, man = read_save(path, FORMAT, VERSION, MANIFEST_FIELDS)
        if dim is not None and man["dim"] is not None and man["dim"] != dim:
            raise ValueError(f"{path}: saved index has dimension {man['dim']}, expected {dim}")
        table = read_json(path / "ids.json")
        if isinstance(table, dict) and "index_sha256" in table:  # absent in saves before the binding
            if table["index_sha256"] != man["files"].get("index.faiss", {}).get("sha256"):
                raise SaveFormatError(f"{path / 'ids.json'}: written with another index.faiss than the one beside it "
                                      "(files of two saves mixed)")
        auto = table.get("auto", {}) if isinstance(table, dict) else {}  # absent in saves before "auto"
        try:
            self = cls(None, man["factory"], train_size=man["train_size"], ef_search=man["ef_search"],
                       nprobe=man["nprobe"], threshold=auto.get("threshold", AUTO_THRESHOLD),
                       auto_factory=auto.get("factory", AUTO_FACTORY))
        except ValueError as exc:
            raise SaveFormatError(f"{path / 'ids.json'}: bad auto settings ({exc})") from exc
        if any(not isinstance(k, int) or not 0 <= k < table["next"] for k in table["keys"]):
            raise SaveFormatError(f"{path / 'ids.json'}: keys outside 0 .. next - 1 ({table['next']})")
        self._int2str = [None] * table["next"]
        for key, sid in zip(table["keys"], table["ids"]):
            self._int2str[key] = sid
        self._str2int = {s: k for k, s in zip(table["keys"], table["ids"])}
        self._dead = set(table["dead"])
        if len(self._str2int) != man["count"]:
            raise SaveFormatError(f"{path / 'ids.json'}: holds {len(self._str2int)} ids, manifest says {man['count']}")
        if man["dim"] is not None:
            file = path / "index.faiss"
            try:
                index = faiss.read_index(str(file))
                if not isinstance(index, faiss.IndexIDMap2):
                    raise RuntimeError(f"expected an IndexIDMap2, found {type(index).__name__}")
            except RuntimeError as exc:
                raise SaveFormatError(f"{file}: FAISS cannot read it ({str(exc).splitlines()[0]})") from exc
            if index.d != man["dim"] or index.ntotal != man["count"] + len(self._dead):
                raise SaveFormatError(f"{file}: holds {index.ntotal} vectors of dim {index.d}, "
                                      f"manifest says {man['count']} of dim {man['dim']}")
            self._dim, self._trained = man["dim"], man["trained"]
            self._index = index
            self._configure()
        return self
