"""LlamaIndex embeddings for ragcun: ``from llama_index.embeddings.ragcun import GaussianEmbedding``."""

from __future__ import annotations

from llama_index.embeddings.ragcun.base import GaussianEmbedding

__all__ = ["GaussianEmbedding"]
