"""Shard files of the embedding cache: how one is written, opened and verified.

A shard is an immutable safetensors file holding ``keys`` (N, 32) uint8 and ``embeddings`` (N, D)
float32, with SHA-256 checksums of both in its metadata, named by the hash of its keys. It is read
with safetensors' ``safe_open``, which memory-maps it: keys are read and verified on open,
embeddings on the first read of their rows. A shard that is truncated, unreadable or fails its
checksum raises :class:`CorruptCacheError`, which :class:`~ragcun.model.cache.store.EmbeddingStore`
handles (set aside as ``*.corrupt``, or raised with ``recompute_corrupt=False``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ragcun.io.atomic import atomic_path
from ragcun.model.cache.keys import FORMAT_VERSION, KEY_BYTES

_HASH_CHUNK = 1 << 24
_DTYPES = {"keys": "U8", "embeddings": "F32"}


class CorruptCacheError(RuntimeError):
    """A cache file is truncated, unreadable or fails its checksum; ``path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"corrupt embedding cache file {self.path}: {reason} (delete it to recompute)")


def _checksum(arr: np.ndarray) -> str:
    digest = hashlib.sha256()
    flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _HASH_CHUNK):
        # an ndarray is a buffer; numpy's stubs declare ``__buffer__`` only for Python >= 3.12
        digest.update(flat[start:start + _HASH_CHUNK])  # type: ignore[arg-type]
    return digest.hexdigest()


def shard_name(keys: np.ndarray) -> str:
    """The file name of the shard holding exactly ``keys`` (N, 32), in that order."""
    return f"{hashlib.sha256(np.ascontiguousarray(keys, dtype=np.uint8).tobytes()).hexdigest()[:32]}.safetensors"


class Shard:
    """One immutable shard file: its keys (read and verified on open) and memory-mapped embeddings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # the torch framework maps the file's tensors instead of copying them
            with safe_open(str(path), framework="pt") as file:
                self.meta = file.metadata() or {}
                arrays = {}
                for name, dtype in _DTYPES.items():
                    found = file.get_slice(name).get_dtype()
                    if found != dtype:
                        raise ValueError(f"{name} has dtype {found}")
                    arrays[name] = file.get_tensor(name).numpy()
            keys, self.embeddings = arrays["keys"], arrays["embeddings"]
            if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or self.embeddings.ndim != 2 or len(self.embeddings) != len(keys):
                raise ValueError(f"bad shapes {keys.shape} and {self.embeddings.shape}")
            self.embeddings.flags.writeable = False
            self.keys = np.array(keys)
            if _checksum(self.keys) != self.meta.get("keys_sha256"):
                raise ValueError("the keys fail their checksum")
        except (OSError, ValueError, SafetensorError) as exc:
            raise CorruptCacheError(path, str(exc) or type(exc).__name__) from exc
        self._verified = False

    @property
    def dim(self) -> int:
        """The embeddings' dimension."""
        return int(self.embeddings.shape[1])

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Embedding rows ``index`` (the first call verifies the embeddings' checksum)."""
        if not self._verified:
            if _checksum(self.embeddings) != self.meta.get("embeddings_sha256"):
                raise CorruptCacheError(self.path, "the embeddings fail their checksum")
            self._verified = True
        return np.asarray(self.embeddings[index], dtype=np.float32)


def write_shard(folder: Path, keys: np.ndarray, embeddings: np.ndarray) -> Path:
    """Write a shard atomically; its name is the hash of its keys (:func:`shard_name`)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shard_name(keys)
    metadata = {"format_version": FORMAT_VERSION, "keys_sha256": _checksum(keys),
                "embeddings_sha256": _checksum(emb)}
    with atomic_path(path) as tmp:
        save_file({"keys": keys, "embeddings": emb}, tmp, metadata=metadata)
    return path
