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

Layout: ``<root>/<fingerprint[:32]>/<sha256 of the shard's keys>[:32].safetensors``. Each shard
holds ``keys`` (N, 32) uint8 and ``embeddings`` (N, D) float32, with SHA-256 checksums of both in its
metadata. Shards are written atomically (:func:`ragcun.io.atomic.atomic_path`) and never modified, so
concurrent readers and writers are safe. No pickle. A shard that is truncated, unreadable or fails its checksum is renamed to ``*.corrupt`` with a
warning naming it, and its texts are encoded again (or, with ``recompute_corrupt=False``,
:class:`CorruptCacheError` is raised naming the file).

A lookup of arbitrary texts goes through an in-memory index of every shard's keys (sorted 64-bit key
prefixes, vectorised), built on first need; a lookup of exactly the texts of one shard (a whole
corpus encoded in one go) opens that shard by name without building the index. Embedding rows are
memory-mapped (safetensors' ``safe_open``), so a cache far larger than memory is fine.

Root: the ``root`` argument, else ``$RAGCUN_CACHE_DIR``, else ``~/.cache/ragcun/embeddings``
(:func:`default_cache_dir`). Deleting the folder (or one model's subfolder) is always safe.

Modules: :mod:`~ragcun.model.cache.keys` (fingerprints and text keys), :mod:`~ragcun.model.cache.shards`
(one shard file), :mod:`~ragcun.model.cache.store` (a model's shards, :class:`EmbeddingStore`),
:mod:`~ragcun.model.cache.embedding_cache` (:class:`EmbeddingCache`).
"""

from __future__ import annotations

from ragcun.model.cache.embedding_cache import CACHE_ENV, EmbeddingCache, default_cache_dir
from ragcun.model.cache.keys import FORMAT_VERSION, KEY_BYTES, base_fingerprint, base_modules, text_keys
from ragcun.model.cache.shards import CorruptCacheError
from ragcun.model.cache.store import EmbeddingStore

__all__ = [
    "CACHE_ENV",
    "FORMAT_VERSION",
    "KEY_BYTES",
    "CorruptCacheError",
    "EmbeddingCache",
    "EmbeddingStore",
    "base_fingerprint",
    "base_modules",
    "default_cache_dir",
    "text_keys",
]
