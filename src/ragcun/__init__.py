"""ragcun: isotropic Gaussian text embeddings, trained with LeJEPA's SIGReg, ranked by L2 distance."""

from __future__ import annotations

from ragcun import _moved
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


def __getattr__(name: str):
    """``ragcun.MilvusL2Index`` without importing pymilvus at ``import ragcun`` time."""
    if name == "MilvusL2Index":
        from ragcun.index.milvus.index import MilvusL2Index

        return MilvusL2Index
    raise AttributeError(f"module 'ragcun' has no attribute {name!r}")
