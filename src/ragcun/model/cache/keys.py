"""Cache keys: a model's base fingerprint (which model's entries) and the keys of texts (which entry)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

FORMAT_VERSION = "1"
"""Bump when what a cached entry means changes: old entries are then never found."""
KEY_BYTES = 32
"""Bytes of one text's key (a SHA-256)."""


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


def routes_tasks(modules: Sequence[torch.nn.Module]) -> bool:
    """Whether ``modules`` hold a ``Router`` (their output depends on the task, so the task is part of a key)."""
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


def unique_first_seen(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
