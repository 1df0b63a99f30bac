"""``GaussianRetriever``: the seed's small API - add texts, retrieve by Euclidean distance, save/load (no pickle)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Sequence

from ragcun.doc_store import DocStore, Record
from ragcun.l2_index import L2Index
from ragcun.text_encoding import encode_texts, load_encoder


class GaussianRetriever:
    """Encode documents with a ``GaussianEncoder`` and retrieve the nearest by L2 distance.

    ``model_path``: a model name or path (``None`` = the bundled model); or pass a loaded ``encoder``.
    ``factory``: FAISS index factory string for the underlying :class:`ragcun.l2_index.L2Index`.
    """

    def __init__(self, model_path: str | None = None, *, encoder: Any = None, factory: str = "Flat",
                 batch_size: int = 32, show_progress: bool = False) -> None:
        if encoder is not None and model_path is not None:
            raise ValueError("pass model_path or encoder, not both")
        self.model_path = model_path
        self.encoder = encoder if encoder is not None else load_encoder(model_path)
        self.batch_size, self.show_progress = batch_size, show_progress
        self.store = DocStore(L2Index(factory=factory))

    def __len__(self) -> int:
        return len(self.store)

    def add_documents(self, documents: Sequence[str]) -> list[str]:
        """Encode and add ``documents``; returns their new (random hex) ids."""
        vecs = encode_texts(self.encoder, documents, batch_size=self.batch_size,
                            show_progress=self.show_progress, what="documents")
        ids = [uuid.uuid4().hex for _ in range(len(vecs))]
        return self.store.add([Record(i, t) for i, t in zip(ids, documents)], vecs)

    def retrieve(self, query: str, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` nearest documents to ``query`` as ``(document, euclidean_distance)``, nearest first."""
        vec = encode_texts(self.encoder, [query], batch_size=1, what="query")
        return [(h.record.text, h.distance) for h in self.store.search(vec[0], top_k)]

    def retrieve_with_scores(self, query: str, top_k: int = 5) -> list[tuple[str, float, float]]:
        """Like :meth:`retrieve`, with the relevance score of ``ragcun.scores`` as a third element."""
        vec = encode_texts(self.encoder, [query], batch_size=1, what="query")
        return [(h.record.text, h.distance, h.score) for h in self.store.search(vec[0], top_k)]

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically save documents and index to directory ``path`` (the model is referenced, not copied)."""
        return self.store.save(path, extra={"model_path": self.model_path})

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: Any = None) -> "GaussianRetriever":
        """Load a :meth:`save` directory; ``encoder`` overrides the saved model reference."""
        store, extra = DocStore.load(path)
        self = cls.__new__(cls)
        self.model_path = extra.get("model_path")
        self.encoder = encoder if encoder is not None else load_encoder(self.model_path)
        self.batch_size, self.show_progress, self.store = 32, False, store
        return self
