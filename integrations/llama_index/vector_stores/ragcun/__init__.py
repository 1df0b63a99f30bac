"""LlamaIndex vector store for ragcun: ``from llama_index.vector_stores.ragcun import GaussianVectorStore``."""

from __future__ import annotations

from ragcun._extras import require

# The framework is an extra: name it before the adapters' own imports fail deeper down.
require("llama_index.core", "llama-index-core", "llamaindex", "llama_index.vector_stores.ragcun")

from llama_index.vector_stores.ragcun.base import GaussianVectorStore, to_filter_spec  # noqa: E402 - after the check above

__all__ = ["GaussianVectorStore", "to_filter_spec"]
