"""Hybrid fusion of a dense (L2) and a sparse (BM25) ranking over their union of candidates.

Each side's top ``candidates`` documents form the candidate set; every candidate is scored by
*both* sides (its exact Euclidean distance to the query and its BM25 score, 0 where no query term
occurs), and :class:`HybridFusion` turns the two into one fused score: convex fusion of per-query
normalised scores (default; fixed floors, dense weight ``alpha``), reciprocal-rank fusion, or a
callable. Fused scores rank the candidates of one query; they are not comparable across queries the
way ``ragcun.scoring.distance_law``'s distance law is.

The stores' defaults (convex fusion, fixed-floor normalisation, dense weight 0.8 — 0.7 for min–max
and z-scores —, 100 candidates a side) were chosen on measurements across corpora (tuned on SciFact train and NQ questions, never on a
test split); the figures and how to reproduce them are in ``docs/benchmarks.md`` ("Hybrid fusion")
and the README ("Hybrid retrieval is the default"). A model may carry its own fitted weight
(:class:`ragcun.scoring.fusion_settings.FusionSettings`), which :func:`resolve_weights` prefers.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np

from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.store.fusion.choice import (
    CONVEX,
    DEFAULT_ALPHA,
    FUSIONS,
    RRF,
    FusionFn,
    FusionMethod,
    HybridFusion,
    check_alpha,
    check_fusion,
)
from ragcun.store.fusion.normalize import (
    DEFAULT_NORMALIZATION,
    DEFAULT_WEIGHTS,
    NORMALIZATIONS,
    check_normalization,
    fixed_floor,
    minmax,
    zscore,
)
from ragcun.store.fusion.rrf import DEFAULT_RRF_K, check_rrf_k, rrf
from ragcun.store.modes import RetrievalMode

DEFAULT_CANDIDATES = 100

__all__ = [
    "CONVEX", "DEFAULT_ALPHA", "DEFAULT_CANDIDATES", "DEFAULT_NORMALIZATION", "DEFAULT_RRF_K", "DEFAULT_WEIGHTS", "FUSIONS",
    "NORMALIZATIONS", "RRF", "FusionFn", "FusionMethod", "HybridFusion", "check_alpha", "check_fusion",
    "FusionDefaults", "check_normalization", "check_rrf_k", "fitted_fusion", "fixed_floor", "fuse", "minmax",
    "resolve_weights", "rrf", "search_fusion", "zscore",
]


def fuse(distances: np.ndarray, lexical_scores: np.ndarray, alpha: float) -> np.ndarray:
    """Min–max convex fusion, in [0, 1], of candidates with Euclidean ``distances`` and BM25 ``lexical_scores``
    (the stores default to fixed floors: :class:`HybridFusion`; this is its ``"minmax"`` choice, which needs
    no query vector)."""
    return HybridFusion(CONVEX, "minmax", check_alpha(alpha)).scores(distances, lexical_scores, 0.0)


def fitted_fusion(model: object) -> FusionSettings | None:
    """The :class:`FusionSettings` a model carries (a ``GaussianEncoder`` or a framework embedding over one:
    its ``fusion_settings``), ``None`` if it has none; a ``ValueError`` if its normalisation is unknown here."""
    settings = getattr(model, "fusion_settings", None) if model is not None else None
    if settings is None:
        return None
    if not isinstance(settings, FusionSettings):
        raise TypeError(f"fusion_settings must be a ragcun FusionSettings; got {type(settings).__name__}")
    check_normalization(settings.normalization)
    return settings


def resolve_weights(alpha: float | None, normalization: str | None,
                    fitted: FusionSettings | None) -> tuple[float, str]:
    """The dense weight and normalisation to use, checked, from the user's (``None``: not set) and a model's fit.

    Unset ``normalization``: the fitted one when ``alpha`` is unset too, else :data:`DEFAULT_NORMALIZATION`.
    Unset ``alpha``: the fitted weight when it was fitted for the normalisation in use, else that
    normalisation's default (:data:`DEFAULT_WEIGHTS`). An explicit ``alpha`` always wins.
    """
    if normalization is None:
        normalization = fitted.normalization if fitted is not None and alpha is None else DEFAULT_NORMALIZATION
    normalization = check_normalization(normalization)
    if alpha is None:
        alpha = fitted.alpha if fitted is not None and fitted.normalization == normalization \
            else DEFAULT_WEIGHTS[normalization]
    return check_alpha(alpha), normalization


class FusionDefaults(Protocol):
    """A store's (or retriever's) hybrid settings for queries that set none (``None``: not set)."""

    @property
    def alpha(self) -> float | None: ...
    @property
    def normalization(self) -> str | None: ...
    @property
    def fusion(self) -> FusionMethod: ...
    @property
    def rrf_k(self) -> int: ...


def search_fusion(defaults: FusionDefaults, fitted: FusionSettings | None, *, alpha: float | None = None,
                  normalization: str | None = None, fusion: FusionMethod | None = None,
                  rrf_k: int | None = None) -> dict[str, Any]:
    """``DocStore.search``'s fusion keywords for one query: each setting this query gives (``None``: not
    given), else ``defaults``'; the weight and normalisation then resolved against the model's ``fitted``
    ones by :func:`resolve_weights`."""
    weight, norm = resolve_weights(defaults.alpha if alpha is None else alpha,
                                   defaults.normalization if normalization is None else normalization, fitted)
    return {"alpha": weight, "normalization": norm, "fusion": defaults.fusion if fusion is None else fusion,
            "rrf_k": defaults.rrf_k if rrf_k is None else rrf_k}


def __getattr__(name: str) -> Any:
    """Deprecated names: ``RETRIEVAL_MODES`` and ``check_mode`` are :class:`ragcun.store.modes.RetrievalMode` now."""
    if name in ("RETRIEVAL_MODES", "check_mode"):
        warnings.warn(f"ragcun.store.fusion.{name} is deprecated; use ragcun.store.modes.RetrievalMode",
                      DeprecationWarning, stacklevel=2)
        return tuple(m.value for m in RetrievalMode) if name == "RETRIEVAL_MODES" else RetrievalMode.parse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
