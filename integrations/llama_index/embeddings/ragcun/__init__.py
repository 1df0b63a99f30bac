"""LlamaIndex embeddings for ragcun: ``from llama_index.embeddings.ragcun import GaussianEmbedding``."""

from __future__ import annotations

import importlib

try:  # the framework is an extra: name it, before the adapters' own imports fail deeper down
    importlib.import_module("llama_index.core")
except ModuleNotFoundError as missing:
    if missing.name != "llama_index.core":
        raise
    raise ImportError('llama_index.embeddings.ragcun requires llama-index-core: pip install "ragcun[llamaindex]"') from None

from llama_index.embeddings.ragcun.base import GaussianEmbedding

__all__ = ["GaussianEmbedding"]
