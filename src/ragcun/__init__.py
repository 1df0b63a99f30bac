"""ragcun: isotropic Gaussian text embeddings, trained with LeJEPA's SIGReg, ranked by L2 distance."""

from __future__ import annotations

import importlib
import warnings
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
    from ragcun.scoring.distance_law import DistanceLaw, DistanceLawScorer, chi2_survival
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
    "DistanceLaw",
    "DistanceLawScorer",
    "DocStore",
    "EmbeddingCache",
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

_HOMES = {
    "BUNDLED_MODEL_NAME": "ragcun.model.encoder",
    "CorruptCacheError": "ragcun.model.cache",
    "DistanceLaw": "ragcun.scoring.distance_law",
    "DistanceLawScorer": "ragcun.scoring.distance_law",
    "DocStore": "ragcun.store.doc_store",
    "EmbeddingCache": "ragcun.model.cache",
    "GaussianEncoder": "ragcun.model.encoder",
    "GaussianRetriever": "ragcun.retriever",
    "Hit": "ragcun.store.hits",
    "IsotropyReport": "ragcun.stats.isotropy",
    "L2Index": "ragcun.index.faiss_l2",
    "MilvusL2Index": "ragcun.index.milvus.index",
    "Record": "ragcun.store.hits",
    "RetrievalMode": "ragcun.store.modes",
    "SaveFormatError": "ragcun.io.saves",
    "VectorIndex": "ragcun.index.protocol",
    "base_fingerprint": "ragcun.model.cache",
    "bundled_model_path": "ragcun.model.encoder",
    "chi2_survival": "ragcun.scoring.distance_law",
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
    """A public name, imported from its module on first use; a renamed one with a ``DeprecationWarning``."""
    from ragcun.scoring.distance_law import DEPRECATED_NAMES  # numpy and scipy only

    if name in DEPRECATED_NAMES:
        warnings.warn(f"ragcun.{name} is deprecated; use ragcun.{DEPRECATED_NAMES[name]}", DeprecationWarning,
                      stacklevel=2)
        return __getattr__(DEPRECATED_NAMES[name])
    if name not in _HOMES:
        raise AttributeError(f"module 'ragcun' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones not imported yet included."""
    return sorted({*globals(), *_HOMES})
