"""LangChain integration for ragcun: ``GaussianEmbeddings`` and ``GaussianVectorStore``."""

from __future__ import annotations

from ragcun._extras import require

# The framework is an extra: name it before the adapters' own imports fail deeper down.
require("langchain_core", "langchain-core", "langchain", "langchain_ragcun")

from langchain_ragcun.embeddings import GaussianEmbeddings  # noqa: E402 - after the check above
from langchain_ragcun.vectorstores import GaussianVectorStore  # noqa: E402 - after the check above

__all__ = ["GaussianEmbeddings", "GaussianVectorStore"]
