"""LlamaIndex embeddings for ragcun: ``from llama_index.embeddings.ragcun import GaussianEmbedding``."""

from __future__ import annotations

from ragcun._extras import require

# The framework is an extra: name it before the adapters' own imports fail deeper down.
require("llama_index.core", "llama-index-core", "llamaindex", "llama_index.embeddings.ragcun")

from llama_index.embeddings.ragcun.base import GaussianEmbedding  # noqa: E402 - after the check above

__all__ = ["GaussianEmbedding"]
