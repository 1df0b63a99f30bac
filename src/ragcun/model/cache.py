"""The one on-disk cache of base-model embeddings, shared by training, evaluation and benchmarks.

What is cached is a model's *base output*: the pooled output of the modules before its Gaussian
head (a :class:`~ragcun.GaussianEncoder`) or before its trailing ``Normalize`` (any other
sentence-transformers model), unnormalised. Heads, normalisation and geometries are applied after
reading, so every geometry of a model, every Gaussian model trained on a frozen copy of a base and
the base itself share one encode.

Keys:

- a model: :func:`base_fingerprint`, the SHA-256 of the base modules' types, configurations and
  weights (dtype included), the prompts and the default prompt name;
- a text: the SHA-256 of the prompt actually prepended (and the task, for a model with a ``Router``)
  and the text (:func:`text_keys`). A model without prompts therefore shares entries between
  queries, documents and training texts.

Layout: ``<root>/<fingerprint[:32]>/<sha256 of the shard's keys>[:32].safetensors``, plus a
``model.json`` describing the model. Each shard holds ``keys`` (N, 32) uint8 and ``embeddings``
(N, D) float32, with SHA-256 checksums of both in its metadata. Shards are written atomically
(temporary file + ``os.replace``) and never modified, so concurrent readers and writers are safe. No
pickle. A shard that is truncated, unreadable or fails its checksum is renamed to ``*.corrupt`` with a
warning naming it, and its texts are encoded again (or, with ``recompute_corrupt=False``,
:class:`CorruptCacheError` is raised naming the file).

A lookup of arbitrary texts goes through an in-memory index of every shard's keys (sorted 64-bit key
prefixes, vectorised), built on first need; a lookup of exactly the texts of one shard (a whole
corpus encoded in one go) opens that shard by name without building the index. Embedding rows are
memory-mapped, so a cache far larger than memory is fine.

Root: the ``root`` argument, else ``$RAGCUN_CACHE_DIR``, else ``~/.cache/ragcun/embeddings``
(:func:`default_cache_dir`). Deleting the folder (or one model's subfolder) is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

CACHE_ENV = "RAGCUN_CACHE_DIR"
FORMAT_VERSION = "1"  # bump when what a cached entry means changes: old entries are then never found
KEY_BYTES = 32
ROLES = ("query", "document")
PROGRESS_MIN = 256  # by default, a progress bar for encodes of at least this many texts
_HASH_CHUNK = 1 << 24


class CorruptCacheError(RuntimeError):
    """A cache file is truncated, unreadable or fails its checksum; ``path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"corrupt embedding cache file {self.path}: {reason} (delete it to recompute)")


def default_cache_dir() -> Path:
    """``$RAGCUN_CACHE_DIR`` or ``~/.cache/ragcun/embeddings``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ragcun" / "embeddings"


# -- what a model's base is -------------------------------------------------------------------


def base_modules(model: SentenceTransformer) -> list[torch.nn.Module]:
    """The modules whose output is cached: before the head of a Gaussian model, else all but a trailing ``Normalize``."""
    from sentence_transformers.base.modules import Normalize

    config = getattr(model, "ragcun_config", None)
    if config and "head_start" in config:
        return [model[i] for i in range(int(config["head_start"]))]
    modules = list(model)
    while modules and isinstance(modules[-1], Normalize):
        modules.pop()
    return modules


def base_fingerprint(model: SentenceTransformer) -> str:
    """SHA-256 of ``model``'s base (see :func:`base_modules`): module types, configs, weights, prompts.

    Two models share cache entries exactly when their fingerprints are equal, e.g. a base model and a
    Gaussian model trained on a frozen copy of it.
    """
    digest = hashlib.sha256(f"ragcun-embedding-cache-v{FORMAT_VERSION}".encode())
    for i, module in enumerate(base_modules(model)):
        get_config = getattr(module, "get_config_dict", None)
        config = get_config() if callable(get_config) else {}
        digest.update(f"{i}:{type(module).__name__}:{json.dumps(config, sort_keys=True, default=str)}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest.update(json.dumps([dict(model.prompts), model.default_prompt_name], sort_keys=True).encode())
    return digest.hexdigest()


def _routes_tasks(modules: Sequence[torch.nn.Module]) -> bool:
    return any(type(m).__name__ == "Router" for m in modules)


def text_keys(texts: Sequence[str], prompt: str = "", task: str | None = None) -> np.ndarray:
    """The (N, 32) uint8 keys of ``texts`` encoded with ``prompt`` prepended (and ``task`` for a Router model)."""
    prefix = b""
    for part in (prompt, task or ""):
        data = part.encode("utf-8")
        prefix += len(data).to_bytes(8, "little") + data
    base = hashlib.sha256(prefix)
    out = bytearray(len(texts) * KEY_BYTES)
    for i, text in enumerate(texts):
        h = base.copy()
        h.update(text.encode("utf-8"))
        out[i * KEY_BYTES:(i + 1) * KEY_BYTES] = h.digest()
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(len(texts), KEY_BYTES)


def _unique_first_seen(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``keys`` in first-seen order, for each row of ``keys`` its index among them, and
    for each distinct row the index of its first occurrence in ``keys``."""
    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    view = np.ascontiguousarray(keys).view(np.dtype((np.void, KEY_BYTES))).ravel()
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return keys[first[order]], rank[inverse.ravel()], first[order]


def _prefix(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys[:, :8]).view("<u8").ravel()


def _checksum(arr: np.ndarray) -> str:
    digest = hashlib.sha256()
    flat = arr.reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _HASH_CHUNK):
        # an ndarray is a buffer; numpy's stubs declare ``__buffer__`` only for Python >= 3.12
        digest.update(flat[start:start + _HASH_CHUNK])  # type: ignore[arg-type]
    return digest.hexdigest()


# -- shards -----------------------------------------------------------------------------------


class _Shard:
    """One immutable shard file: its keys (read and verified on open) and memory-mapped embeddings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                if n > size - 8:
                    raise ValueError("header runs past the end of the file")
                header = json.loads(f.read(n))
            self.meta = header.pop("__metadata__", None) or {}
            start = 8 + n
            arrays = {}
            for name, dtype in (("keys", np.uint8), ("embeddings", np.float32)):
                info = header[name]
                if info["dtype"] != {"keys": "U8", "embeddings": "F32"}[name]:
                    raise ValueError(f"{name} has dtype {info['dtype']}")
                lo, hi = info["data_offsets"]
                shape = tuple(info["shape"])
                if hi - lo != int(np.prod(shape)) * np.dtype(dtype).itemsize or start + hi > size:
                    raise ValueError("the file is truncated")
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=start + lo, shape=shape) if hi > lo \
                    else np.zeros(shape, dtype)
            keys, self.embeddings = arrays["keys"], arrays["embeddings"]
            if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or self.embeddings.ndim != 2 or len(self.embeddings) != len(keys):
                raise ValueError(f"bad shapes {keys.shape} and {self.embeddings.shape}")
            self.keys = np.array(keys)
            if _checksum(self.keys) != self.meta.get("keys_sha256"):
                raise ValueError("the keys fail their checksum")
        except CorruptCacheError:
            raise
        except (OSError, ValueError, KeyError, TypeError, struct.error, json.JSONDecodeError) as exc:
            raise CorruptCacheError(path, str(exc) or type(exc).__name__) from exc
        self._verified = False

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Embedding rows ``index`` (the first call verifies the embeddings' checksum)."""
        if not self._verified:
            if _checksum(np.asarray(self.embeddings)) != self.meta.get("embeddings_sha256"):
                raise CorruptCacheError(self.path, "the embeddings fail their checksum")
            self._verified = True
        return np.asarray(self.embeddings[index], dtype=np.float32)


def _write_shard(folder: Path, keys: np.ndarray, embeddings: np.ndarray) -> Path:
    """Write a shard atomically; its name is the hash of its keys."""
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(keys.tobytes()).hexdigest()[:32]}.safetensors"
    metadata = {"format_version": FORMAT_VERSION, "keys_sha256": _checksum(keys), "embeddings_sha256": _checksum(emb)}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".shard-", suffix=".tmp")
    os.close(fd)
    try:
        save_file({"keys": keys, "embeddings": emb}, tmp, metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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
        self._shards: dict[str, _Shard] = {}
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

    def _open(self, path: Path) -> _Shard | None:
        name = path.name
        if name in self._shards:
            return self._shards[name]
        if name in self._bad or not path.is_file():
            return None
        try:
            shard = _Shard(path)
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
        unique, inverse, _ = _unique_first_seen(keys)
        if len(unique):  # fast path: exactly the texts of one shard (a whole corpus written at once)
            shard = self._open(self.dir / f"{hashlib.sha256(unique.tobytes()).hexdigest()[:32]}.safetensors")
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
        dims = {s.dim for s in self._shards.values()}
        if dims and dims != {emb.shape[1]}:
            raise ValueError(f"{self.dir} holds {dims.pop()}-d embeddings; got {emb.shape[1]}-d")
        path = _write_shard(self.dir, keys, emb)
        self._bad.discard(path.name)
        self._shards.pop(path.name, None)
        self._open(path)
        return path


# -- a model's cache --------------------------------------------------------------------------


class EmbeddingCache:
    """Base outputs of one model (see the module docstring), read from disk or encoded once and stored.

    Args:
        model: any sentence-transformers model; a :class:`~ragcun.GaussianEncoder` is cached up to its head.
        root: the cache folder; default :func:`default_cache_dir`.
        batch_size: encoding batch size.
        show_progress: a progress bar while encoding; ``None``: for at least 256 texts.
        recompute_corrupt: see :class:`EmbeddingStore`.

    ``hits`` / ``misses`` count looked-up texts found / encoded since creation.
    """

    def __init__(self, model: SentenceTransformer, root: str | Path | None = None, *, batch_size: int = 64,
                 show_progress: bool | None = None, recompute_corrupt: bool = True) -> None:
        self.model = model
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.batch_size, self.show_progress = batch_size, show_progress
        self.modules = base_modules(model)
        self.fingerprint = base_fingerprint(model)
        self.store = EmbeddingStore(self.root / self.fingerprint[:32], recompute_corrupt=recompute_corrupt)
        self.dir = self.store.dir
        self._base: SentenceTransformer | None = None
        self.hits = 0
        self.misses = 0

    def prompt(self, role: str | None = None) -> str:
        """The prompt prepended for ``role``: ``query`` / ``document`` as ``encode_query`` / ``encode_document``
        do, ``None`` as ``encode`` does (the default prompt, if any)."""
        if role is None:
            name = self.model.default_prompt_name
        elif role in ROLES:
            name = role
        else:
            raise ValueError(f"role must be one of {ROLES} or None; got {role!r}")
        return self.model.prompts.get(name, "") or "" if name is not None else ""

    def keys(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """The cache keys of ``texts`` as ``role``."""
        return text_keys(texts, self.prompt(role), role if _routes_tasks(self.modules) else None)

    def missing(self, texts: Sequence[str], role: str | None = None) -> list[str]:
        """The distinct texts of ``texts`` not cached yet, in first-seen order."""
        texts = list(texts)
        _, found = self.store.lookup(self.keys(texts, role))
        return list(dict.fromkeys(t for t, f in zip(texts, found) if not f))

    def get(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """Base outputs (N, D) float32 of ``texts`` as ``role``; encodes and stores only those not cached yet."""
        texts = list(texts)
        keys = self.keys(texts, role)
        emb, found = self.store.lookup(keys)
        if not found.all():
            self.store.refresh()  # another process may have written them meanwhile
            emb, found = self.store.lookup(keys)
        if found.all():
            self.hits += len(texts)
            return emb if emb is not None else np.zeros((0, self._dimension()), np.float32)
        _, _, first = _unique_first_seen(keys[~found])
        todo_idx = np.flatnonzero(~found)[first]
        todo = [texts[i] for i in todo_idx]
        self.hits += int(found.sum())
        self.misses += len(todo)
        log.info("encoding %d texts with the base model (cache: %s)", len(todo), self.dir)
        new = self.encode(todo, role)
        self.store.add(keys[todo_idx], new)
        emb, found = self.store.lookup(keys)
        if emb is None or not found.all():
            raise RuntimeError(f"embeddings just written to {self.dir} cannot be read back")
        return emb

    def put(self, texts: Sequence[str], embeddings: np.ndarray, role: str | None = None) -> None:
        """Store base outputs computed elsewhere (they must be what :meth:`encode` gives)."""
        texts = list(texts)
        keys = self.keys(texts, role)
        unique, _, first = _unique_first_seen(keys)
        self.store.add(unique, np.asarray(embeddings)[first])

    def encode(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """Encode ``texts`` as ``role`` with the base (never reads or writes the cache)."""
        if self._base is None:
            base = SentenceTransformer(modules=self.modules, device=str(self.model.device))
            base.prompts, base.default_prompt_name = dict(self.model.prompts), self.model.default_prompt_name
            self._base = base
        kwargs: dict[str, Any] = {"task": role} if role is not None and _routes_tasks(self.modules) else {}
        show = self.show_progress if self.show_progress is not None else len(texts) >= PROGRESS_MIN
        with torch.no_grad():
            out = self._base.encode(list(texts), prompt=self.prompt(role), batch_size=self.batch_size,
                                    show_progress_bar=show, convert_to_numpy=True, **kwargs)
        out = np.asarray(out, dtype=np.float32)
        if not np.isfinite(out).all():
            raise ValueError("the model produced NaN or infinite values")
        return out

    def _dimension(self) -> int:
        dims = {s.dim for s in self.store._shards.values()}
        if dims:
            return dims.pop()
        config = getattr(self.model, "ragcun_config", None)
        if config and "input_dim" in config:
            return int(config["input_dim"])
        return int(self.model.get_embedding_dimension() or 0)
