"""Indexes: the ``VectorIndex`` protocol and its shared checks, exact FAISS L2 search, BM25, Milvus.

Imports only :mod:`ragcun.io` below it. Milvus (``ragcun.index.milvus``) loads pymilvus only when used.
"""
