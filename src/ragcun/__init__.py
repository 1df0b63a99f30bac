"""ragcun: isotropic Gaussian text embeddings, trained with LeJEPA's SIGReg, ranked by L2 distance."""

from __future__ import annotations

import warnings
from typing import Any

from ragcun import _moved
from ragcun.index.faiss_l2 import L2Index
from ragcun.index.filters import compile_filter
from ragcun.index.protocol import VectorIndex
from ragcun.io.saves import SaveFormatError
from ragcun.model.cache import CorruptCacheError, EmbeddingCache, base_fingerprint, default_cache_dir
from ragcun.model.encoder import BUNDLED_MODEL_NAME, GaussianEncoder, bundled_model_path, resolve_model_path
from ragcun.retriever import GaussianRetriever
from ragcun.scoring.distance_law import DEPRECATED_NAMES, DistanceLaw, DistanceLawScorer, chi2_survival
from ragcun.stats.isotropy import IsotropyReport, covariance_isotropy, isotropy_report
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Hit, Record
from ragcun.store.mmr import mmr_select
from ragcun.store.modes import RetrievalMode

__version__ = "0.1.0"

_moved.install()

__all__ = [
    "BUNDLED_MODEL_NAME",
    "CorruptCacheError",
    "EmbeddingCache",
    "DistanceLaw",
    "DistanceLawScorer",
    "DocStore",
    "GaussianEncoder",
    "GaussianRetriever",
    "Hit",
    "IsotropyReport",
    "L2Index",
    "Record",
    "RetrievalMode",
    "SaveFormatError",
    "VectorIndex",
    "base_fingerprint",
    "bundled_model_path",
    "chi2_survival",
    "compile_filter",
    "covariance_isotropy",
    "default_cache_dir",
    "isotropy_report",
    "mmr_select",
    "resolve_model_path",
]


def __getattr__(name: str) -> Any:
    """``ragcun.MilvusL2Index`` without importing pymilvus at ``import ragcun`` time, and the deprecated
    distance-law names (``RelevanceScore`` ...: "relevance" now means only the calibrator), with a warning."""
    if name == "MilvusL2Index":
        from ragcun.index.milvus.index import MilvusL2Index

        return MilvusL2Index
    if name in DEPRECATED_NAMES:
        warnings.warn(f"ragcun.{name} is deprecated; use ragcun.{DEPRECATED_NAMES[name]}", DeprecationWarning,
                      stacklevel=2)
        return globals()[DEPRECATED_NAMES[name]]
    raise AttributeError(f"module 'ragcun' has no attribute {name!r}")
