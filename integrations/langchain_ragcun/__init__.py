"""LangChain integration for ragcun: ``GaussianEmbeddings`` and ``GaussianVectorStore``."""

from __future__ import annotations

import importlib

try:  # the framework is an extra: name it, before the adapters' own imports fail deeper down
    importlib.import_module("langchain_core")
except ModuleNotFoundError as missing:
    if missing.name != "langchain_core":
        raise
    raise ImportError('langchain_ragcun requires langchain-core: pip install "ragcun[langchain]"') from None

from langchain_ragcun.embeddings import GaussianEmbeddings
from langchain_ragcun.vectorstores import GaussianVectorStore

__all__ = ["GaussianEmbeddings", "GaussianVectorStore"]
