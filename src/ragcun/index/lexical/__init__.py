"""Lexical retrieval: the text analyser and the incremental BM25 index."""

from __future__ import annotations

from ragcun.index.lexical.analyzer import Analyzer
from ragcun.index.lexical.bm25 import BM25Index

__all__ = ["Analyzer", "BM25Index"]
