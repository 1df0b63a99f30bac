"""LangChain integration for ragcun: ``GaussianEmbeddings`` and ``GaussianVectorStore``."""

from __future__ import annotations

from langchain_ragcun.embeddings import GaussianEmbeddings
from langchain_ragcun.vectorstores import GaussianVectorStore

__all__ = ["GaussianEmbeddings", "GaussianVectorStore"]
