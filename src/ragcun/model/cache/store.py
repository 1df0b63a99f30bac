"""``EmbeddingStore``: key -> vector storage for one model's folder of shards (numpy and safetensors only; no model needed).

A lookup of arbitrary keys goes through an in-memory index of every shard's keys (sorted 64-bit key
prefixes, vectorised), built on first need; a lookup of exactly the keys of one shard (a whole corpus
encoded in one go) opens that shard by name without building the index.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ragcun.model.cache.keys import KEY_BYTES, unique_first_seen
from ragcun.model.cache.shards import CorruptCacheError, Shard, shard_name, write_shard

log = logging.getLogger(__name__)


def _prefix(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys[:, :8]).view("<u8").ravel()


class EmbeddingStore:
    """Key → vector storage for one model's folder (numpy and safetensors only; no model needed).

    Args:
        folder: the model's folder, ``<root>/<fingerprint[:32]>``.
        recompute_corrupt: quarantine a corrupt shard and report its keys as missing (default), or raise
            :class:`CorruptCacheError`.
    """

    def __init__(self, folder: str | Path, *, recompute_corrupt: bool = True) -> None:
        self.dir = Path(folder)
        self.recompute_corrupt = recompute_corrupt
        self._shards: dict[str, Shard] = {}
        self._bad: set[str] = set()
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # prefixes, keys, shard, row (sorted)
        self._order: list[str] = []
        self._scanned = False

    # internal bookkeeping

    def _corrupt(self, exc: CorruptCacheError) -> None:
        if not self.recompute_corrupt:
            raise exc
        log.warning("%s; moving it aside to %s.corrupt and encoding its texts again", exc, exc.path.name)
        self._bad.add(exc.path.name)
        self._shards.pop(exc.path.name, None)
        self._index = None
        try:
            os.replace(exc.path, exc.path.with_name(exc.path.name + ".corrupt"))
        except OSError:
            pass

    def _open(self, path: Path) -> Shard | None:
        name = path.name
        if name in self._shards:
            return self._shards[name]
        if name in self._bad or not path.is_file():
            return None
        try:
            shard = Shard(path)
        except CorruptCacheError as exc:
            self._corrupt(exc)
            return None
        self._shards[name] = shard
        self._index = None
        return shard

    def refresh(self) -> None:
        """Pick up shards written since the last look (by this or another process)."""
        if self.dir.is_dir():
            for path in sorted(self.dir.glob("*.safetensors")):
                self._open(path)
        self._scanned = True

    def _build_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self._scanned:
            self.refresh()
        if self._index is None:
            names = list(self._shards)
            keys = [self._shards[n].keys for n in names]
            all_keys = np.concatenate(keys) if keys else np.zeros((0, KEY_BYTES), np.uint8)
            shard_ids = np.concatenate([np.full(len(k), i, np.int32) for i, k in enumerate(keys)]) if keys else np.zeros(0, np.int32)
            rows = np.concatenate([np.arange(len(k)) for k in keys]) if keys else np.zeros(0, np.int64)
            prefixes = _prefix(all_keys)
            order = np.argsort(prefixes, kind="stable")
            self._index = (prefixes[order], all_keys[order], shard_ids[order], rows[order])
            self._order = names
        return self._index

    def _locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each key, (shard number in ``self._order`` or -1, row)."""
        prefixes, all_keys, shard_ids, rows = self._build_index()
        found_shard = np.full(len(keys), -1, np.int32)
        found_row = np.zeros(len(keys), np.int64)
        if not len(keys) or not len(prefixes):
            return found_shard, found_row
        want = _prefix(keys)
        pos = np.searchsorted(prefixes, want)
        ok = pos < len(prefixes)
        pos_c = np.minimum(pos, len(prefixes) - 1)
        ok &= prefixes[pos_c] == want
        exact = ok & (all_keys[pos_c] == keys).all(axis=1)
        found_shard[exact], found_row[exact] = shard_ids[pos_c[exact]], rows[pos_c[exact]]
        for i in np.flatnonzero(ok & ~exact):  # a 64-bit prefix shared by different keys: look further
            j = pos[i] + 1
            while j < len(prefixes) and prefixes[j] == want[i]:
                if (all_keys[j] == keys[i]).all():
                    found_shard[i], found_row[i] = shard_ids[j], rows[j]
                    break
                j += 1
        return found_shard, found_row

    # public API

    @property
    def dim(self) -> int | None:
        """The dimension of the embeddings in the shards opened so far; ``None`` before any."""
        dims = {s.dim for s in self._shards.values()}
        return dims.pop() if dims else None

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached rows for ``keys`` (N, 32): ``(embeddings (N, D) or None if nothing was found, found mask (N,))``.

        Rows not found are zero.
        """
        keys = np.asarray(keys, dtype=np.uint8).reshape(-1, KEY_BYTES)
        for _ in range(3):  # a shard found corrupt while reading is dropped and the lookup retried
            try:
                return self._lookup(keys)
            except CorruptCacheError as exc:
                self._corrupt(exc)
        return self._lookup(keys)

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        unique, inverse, _ = unique_first_seen(keys)
        if len(unique):  # fast path: exactly the texts of one shard (a whole corpus written at once)
            shard = self._open(self.dir / shard_name(unique))
            if shard is not None and shard.keys.shape == unique.shape and np.array_equal(shard.keys, unique):
                return shard.rows(inverse), np.ones(len(keys), bool)
        shard_of, row_of = self._locate(unique)
        found_u = shard_of >= 0
        if not found_u.any():
            return None, np.zeros(len(keys), bool)
        dim = self._shards[self._order[int(shard_of[found_u][0])]].dim
        out_u = np.zeros((len(unique), dim), np.float32)
        for s in np.unique(shard_of[found_u]):
            sel = np.flatnonzero(shard_of == s)
            order = np.argsort(row_of[sel], kind="stable")  # read rows in file order
            out_u[sel[order]] = self._shards[self._order[int(s)]].rows(row_of[sel[order]])
        return out_u[inverse], found_u[inverse]

    def add(self, keys: np.ndarray, embeddings: np.ndarray) -> Path:
        """Store ``embeddings`` (N, D) under ``keys`` (N, 32, distinct) as one new shard; its path."""
        keys = np.asarray(keys, dtype=np.uint8).reshape(-1, KEY_BYTES)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(keys):
            raise ValueError(f"expected ({len(keys)}, D) embeddings, got {emb.shape}")
        if not np.isfinite(emb).all():
            raise ValueError("refusing to cache NaN or infinite embeddings")
        if self.dim is not None and self.dim != emb.shape[1]:
            raise ValueError(f"{self.dir} holds {self.dim}-d embeddings; got {emb.shape[1]}-d")
        path = write_shard(self.dir, keys, emb)
        self._bad.discard(path.name)
        self._shards.pop(path.name, None)
        self._open(path)
        return path
