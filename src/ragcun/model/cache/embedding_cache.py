"""``EmbeddingCache``: one model's base outputs, read from the cache folder or encoded once and stored."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from ragcun.model.backends import LOSSLESS_BACKENDS, onnx_export, resolve_backend
from ragcun.model.backends.model import BackendSentenceTransformer
from ragcun.model.cache.keys import base_fingerprint, base_modules, routes_tasks, text_keys, unique_first_seen
from ragcun.model.cache.store import EmbeddingStore
from ragcun.model.encoding import ROLES

log = logging.getLogger(__name__)

CACHE_ENV = "RAGCUN_CACHE_DIR"
"""The environment variable naming the cache folder."""
PROGRESS_MIN = 256
"""By default, a progress bar for encodes of at least this many texts."""


def default_cache_dir() -> Path:
    """``$RAGCUN_CACHE_DIR`` or ``~/.cache/ragcun/embeddings``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ragcun" / "embeddings"


class EmbeddingCache:
    """Base outputs of one model (see :mod:`ragcun.model.cache`), read from disk or encoded once and stored.

    Args:
        model: any sentence-transformers model; a :class:`~ragcun.GaussianEncoder` is cached up to its head.
        root: the cache folder; default :func:`default_cache_dir`.
        batch_size: encoding batch size.
        show_progress: a progress bar while encoding; ``None``: for at least 256 texts.
        recompute_corrupt: see :class:`~ragcun.model.cache.store.EmbeddingStore`.
        backend: the inference backend that encodes (:mod:`ragcun.model.backends`); default: the model's own
            ``backend=`` for a ragcun model, else the default for its device. Lossless backends (``"torch"``,
            ``"onnx"``) share entries; a lossy one (``"onnx-int8"``) keeps its own (its fingerprint differs).

    ``hits`` / ``misses`` count looked-up texts found / encoded since creation.
    """

    def __init__(self, model: SentenceTransformer, root: str | Path | None = None, *, batch_size: int = 64,
                 show_progress: bool | None = None, recompute_corrupt: bool = True,
                 backend: str | None = None) -> None:
        self.model = model
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.batch_size, self.show_progress = batch_size, show_progress
        self.modules = base_modules(model)
        self.backend_asked = backend if backend is not None else getattr(model, "backend_asked", None)
        backend_now = resolve_backend(self.backend_asked, model.device)
        self.fingerprint = base_fingerprint(model)
        if backend_now not in LOSSLESS_BACKENDS:  # its vectors depend on how the export quantises, too
            tag = f"{self.fingerprint}:{backend_now}:export-{onnx_export.EXPORT_VERSION}"
            self.fingerprint = hashlib.sha256(tag.encode()).hexdigest()
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
        return text_keys(texts, self.prompt(role), role if routes_tasks(self.modules) else None)

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
        _, _, first = unique_first_seen(keys[~found])
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

    def encode(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """Encode ``texts`` as ``role`` with the base (never reads or writes the cache)."""
        if self._base is None:
            base = BackendSentenceTransformer(modules=self.modules, device=str(self.model.device),
                                              backend=self.backend_asked, export_root=self.root)
            base.prompts, base.default_prompt_name = dict(self.model.prompts), self.model.default_prompt_name
            self._base = base
        kwargs: dict[str, Any] = {"task": role} if role is not None and routes_tasks(self.modules) else {}
        show = self.show_progress if self.show_progress is not None else len(texts) >= PROGRESS_MIN
        with torch.no_grad():
            out = self._base.encode(list(texts), prompt=self.prompt(role), batch_size=self.batch_size,
                                    show_progress_bar=show, convert_to_numpy=True, **kwargs)
        out = np.asarray(out, dtype=np.float32)
        if not np.isfinite(out).all():
            raise ValueError("the model produced NaN or infinite values")
        return out

    def _dimension(self) -> int:
        if self.store.dim is not None:
            return self.store.dim
        config = getattr(self.model, "ragcun_config", None)
        if config and "input_dim" in config:
            return int(config["input_dim"])
        return int(self.model.get_embedding_dimension() or 0)
