"""LlamaIndex vector store for ragcun: ``from llama_index.vector_stores.ragcun import GaussianVectorStore``."""

from __future__ import annotations

import importlib

try:  # the framework is an extra: name it, before the adapters' own imports fail deeper down
    importlib.import_module("llama_index.core")
except ModuleNotFoundError as missing:
    if missing.name != "llama_index.core":
        raise
    raise ImportError('llama_index.vector_stores.ragcun requires llama-index-core: pip install "ragcun[llamaindex]"') from None

from llama_index.vector_stores.ragcun.base import GaussianVectorStore, to_filter_spec

__all__ = ["GaussianVectorStore", "to_filter_spec"]
