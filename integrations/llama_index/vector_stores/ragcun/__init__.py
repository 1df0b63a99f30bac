"""LlamaIndex vector store for ragcun: ``from llama_index.vector_stores.ragcun import GaussianVectorStore``."""

from __future__ import annotations

from llama_index.vector_stores.ragcun.base import GaussianVectorStore, to_filter_spec

__all__ = ["GaussianVectorStore", "to_filter_spec"]
