"""``GaussianRetriever``: a small API - add texts, retrieve (hybrid L2 + BM25 by default), save/load (no pickle)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcun.index.faiss_l2 import L2Index
from ragcun.model.encoding import encode_texts, load_encoder
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.store.doc_store import DocStore, scored_store
from ragcun.store.fusion import (
    DEFAULT_RRF_K,
    FusionMethod,
    check_fusion,
    check_rrf_k,
    fitted_fusion,
    resolve_weights,
    search_fusion,
)
from ragcun.store.hits import Hit, Record
from ragcun.store.modes import RetrievalMode


class GaussianRetriever:
    """Encode documents with a ``GaussianEncoder`` and retrieve them: hybrid L2 + BM25 by default.

    ``retrieve(query, top_k, mode=...)``: ``"hybrid"`` (default), ``"dense"`` (L2 distance only) or
    ``"sparse"`` (BM25 only; alias ``"lexical"``), as a :class:`ragcun.RetrievalMode` or its string.
    Hybrid fusion (:class:`ragcun.store.fusion.HybridFusion`): ``fusion`` (``"convex"``, ``"rrf"`` or a
    callable), ``normalization`` (``"fixed-floor"``, ``"minmax"``, ``"zscore"``), ``alpha`` (dense weight)
    and ``rrf_k``, set here for every query or per ``retrieve`` call. ``alpha=None`` and
    ``normalization=None`` (the defaults) mean the encoder's fitted weight
    (``encoder.fusion_settings``) when it has one, else 0.8 with fixed floors
    (:func:`ragcun.store.fusion.resolve_weights`).

    ``model_path``: a model name or path (``None`` = the bundled model); or pass a loaded ``encoder``.
    ``factory``: the underlying :class:`ragcun.index.faiss_l2.L2Index`'s factory (default ``"auto"``: exact,
    then HNSW past the size threshold, as the stores do; or any FAISS ``index_factory`` string).
    ``store``: an existing :class:`DocStore` to search instead of a new one (``factory`` is then unused);
    the encoder's relevance calibrator, if it has one, replaces the store's.
    """

    def __init__(self, model_path: str | None = None, *, encoder: Any = None, factory: str = "auto",
                 batch_size: int = 32, show_progress: bool = False, store: DocStore | None = None,
                 fusion: FusionMethod = "convex", normalization: str | None = None, alpha: float | None = None,
                 rrf_k: int = DEFAULT_RRF_K) -> None:
        if encoder is not None and model_path is not None:
            raise ValueError("pass model_path or encoder, not both")
        self.model_path = model_path
        self.encoder = encoder if encoder is not None else load_encoder(model_path)
        self.batch_size, self.show_progress = batch_size, show_progress
        self.fusion, self.rrf_k = check_fusion(fusion), check_rrf_k(rrf_k)
        self.normalization, self.alpha, self._fitted = normalization, alpha, fitted_fusion(self.encoder)
        resolve_weights(alpha, normalization, self._fitted)  # checks them now
        self.store = scored_store(store, L2Index(factory=factory) if store is None else None, None, None,
                                  getattr(self.encoder, "relevance_calibrator", None))

    def __len__(self) -> int:
        return len(self.store)

    def add_documents(self, documents: Sequence[str]) -> list[str]:
        """Encode and add ``documents``; returns their new (random hex) ids."""
        vecs = encode_texts(self.encoder, documents, "document", batch_size=self.batch_size,
                            show_progress=self.show_progress, what="documents")
        ids = [uuid.uuid4().hex for _ in range(len(vecs))]
        return self.store.add([Record(i, t) for i, t in zip(ids, documents)], vecs)

    def retrieve(self, query: str, top_k: int = 5, mode: RetrievalMode | str = RetrievalMode.HYBRID,
                 alpha: float | None = None, *, fusion: FusionMethod | None = None, normalization: str | None = None,
                 rrf_k: int | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` best documents for ``query`` as ``(document, euclidean_distance)``, best first
        (``alpha``, ``fusion``, ``normalization``, ``rrf_k``: this query's, ``None`` = the retriever's)."""
        return [(h.record.text, h.distance) for h in self._hits(query, top_k, mode, alpha, fusion, normalization, rrf_k)]

    def retrieve_with_scores(self, query: str, top_k: int = 5, mode: RetrievalMode | str = RetrievalMode.HYBRID,
                             alpha: float | None = None, *, fusion: FusionMethod | None = None,
                             normalization: str | None = None, rrf_k: int | None = None) -> list[tuple[str, float, float]]:
        """Like :meth:`retrieve`, with the hit's score (:attr:`ragcun.Hit.score`: ``P(relevant)`` when the
        model carries a relevance calibrator, else the fused score) as a third element."""
        return [(h.record.text, h.distance, h.score)
                for h in self._hits(query, top_k, mode, alpha, fusion, normalization, rrf_k)]

    def _hits(self, query: str, top_k: int, mode: RetrievalMode | str, alpha: float | None,
              fusion: FusionMethod | None, normalization: str | None, rrf_k: int | None) -> list[Hit]:
        mode = RetrievalMode.parse(mode)
        how = search_fusion(self, self._fitted, alpha=alpha, normalization=normalization, fusion=fusion, rrf_k=rrf_k)
        vec = None if mode is RetrievalMode.SPARSE else \
            encode_texts(self.encoder, [query], "query", batch_size=1, what="query")[0]
        return self.store.search(vec, top_k, text=query, mode=mode, **how)

    def calibrate(self, judgements: Sequence[tuple[str, str, bool]]) -> RelevanceCalibrator:
        """Fit ``P(relevant)`` on judged ``(query text, document id, relevant)`` hits at this store's distances
        (:meth:`DocStore.fit_calibrator`); it scores later hits and is saved with the store."""
        return self.store.fit_calibrator(judgements, lambda texts: encode_texts(
            self.encoder, texts, "query", batch_size=self.batch_size, what="queries"))

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically save documents and index to directory ``path`` (the model is referenced, not copied)."""
        return self.store.save(path, extra={"model_path": self.model_path})

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: Any = None) -> GaussianRetriever:
        """Load a :meth:`save` directory; ``encoder`` overrides the saved model reference (which is kept for a later save).
        A calibrator saved with the store (say one :meth:`calibrate` fitted) stays; the model's scores a store saved without one."""
        store, extra = DocStore.load(path)
        model_path, saved = extra.get("model_path"), store.calibrator
        retriever = cls(model_path, store=store) if encoder is None else cls(encoder=encoder, store=store)
        retriever.model_path = model_path
        if saved is not None and saved != retriever.store.calibrator:
            retriever.store.calibrator = saved
        return retriever
