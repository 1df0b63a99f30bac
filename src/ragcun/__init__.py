"""ragcun: isotropic Gaussian text embeddings, trained with LeJEPA's SIGReg, ranked by L2 distance."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ragcun import _moved

if TYPE_CHECKING:
    from ragcun.index.faiss_l2 import L2Index
    from ragcun.index.filters import compile_filter
    from ragcun.index.protocol import VectorIndex
    from ragcun.io.saves import SaveFormatError
    from ragcun.model.cache import CorruptCacheError, EmbeddingCache, base_fingerprint, default_cache_dir
    from ragcun.model.encoder import BUNDLED_MODEL_NAME, GaussianEncoder, bundled_model_path, resolve_model_path
    from ragcun.retriever import GaussianRetriever
    from ragcun.scoring.distance_law import RelevanceScore, RelevanceScorer, chi2_relevance
    from ragcun.stats.isotropy import IsotropyReport, covariance_isotropy, isotropy_report
    from ragcun.store.doc_store import DocStore, Record
    from ragcun.store.mmr import mmr_select

__version__ = "0.1.0"

_moved.install()

__all__ = [
    "BUNDLED_MODEL_NAME",
    "CorruptCacheError",
    "EmbeddingCache",
    "DocStore",
    "GaussianEncoder",
    "GaussianRetriever",
    "IsotropyReport",
    "L2Index",
    "Record",
    "RelevanceScore",
    "RelevanceScorer",
    "SaveFormatError",
    "VectorIndex",
    "base_fingerprint",
    "bundled_model_path",
    "chi2_relevance",
    "compile_filter",
    "covariance_isotropy",
    "default_cache_dir",
    "isotropy_report",
    "mmr_select",
    "resolve_model_path",
]

_HOMES = {
    "BUNDLED_MODEL_NAME": "ragcun.model.encoder",
    "CorruptCacheError": "ragcun.model.cache",
    "EmbeddingCache": "ragcun.model.cache",
    "DocStore": "ragcun.store.doc_store",
    "GaussianEncoder": "ragcun.model.encoder",
    "GaussianRetriever": "ragcun.retriever",
    "IsotropyReport": "ragcun.stats.isotropy",
    "L2Index": "ragcun.index.faiss_l2",
    "MilvusL2Index": "ragcun.index.milvus.index",
    "Record": "ragcun.store.doc_store",
    "RelevanceScore": "ragcun.scoring.distance_law",
    "RelevanceScorer": "ragcun.scoring.distance_law",
    "SaveFormatError": "ragcun.io.saves",
    "VectorIndex": "ragcun.index.protocol",
    "base_fingerprint": "ragcun.model.cache",
    "bundled_model_path": "ragcun.model.encoder",
    "chi2_relevance": "ragcun.scoring.distance_law",
    "compile_filter": "ragcun.index.filters",
    "covariance_isotropy": "ragcun.stats.isotropy",
    "default_cache_dir": "ragcun.model.cache",
    "isotropy_report": "ragcun.stats.isotropy",
    "mmr_select": "ragcun.store.mmr",
    "resolve_model_path": "ragcun.model.encoder",
}
"""The module of each public name (and ``MilvusL2Index``, which needs pymilvus): imported on first use, so
``import ragcun`` (and a light module such as :mod:`ragcun.model.choices`) loads neither torch nor
sentence-transformers."""


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'ragcun' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones not imported yet included."""
    return sorted({*globals(), *_HOMES})
