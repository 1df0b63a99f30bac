"""LlamaIndex embeddings for ragcun: ``from llama_index.embeddings.ragcun import GaussianEmbedding``."""

from llama_index.embeddings.ragcun.base import GaussianEmbedding

__all__ = ["GaussianEmbedding"]
