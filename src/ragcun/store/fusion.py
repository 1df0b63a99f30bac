"""Convex fusion of a dense (L2) and a sparse (BM25) ranking over their union of candidates.

Each side's top ``candidates`` documents form the candidate set; every candidate is scored by
*both* sides (its exact Euclidean distance to the query and its BM25 score, 0 where no query term
occurs), each side is min–max normalised over the candidates (the dense side on ``-distance²``:
the Gaussian log-likelihood up to constants, and on unit vectors exactly cosine similarity up to
an affine map, so for a cosine model the fusion is the usual cosine + BM25 one), and the fused
score is

    fused = alpha * dense_norm + (1 - alpha) * lexical_norm,    alpha = dense weight in [0, 1].

Fused scores lie in [0, 1]: 1 is a candidate best on both sides. They rank the candidates of one
query and are relative to them (the best candidate scores near 1 whatever the query), so they
are not comparable across queries the way ``ragcun.scoring.distance_law``' distance law is.

The defaults (dense weight 0.7, 100 candidates a side, convex rather than reciprocal-rank fusion) were
chosen on measurements across corpora; the figures and how to reproduce them are in the README
("Hybrid retrieval is the default") and ``../shared/notes/quality-probes.md``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ragcun.store.modes import RetrievalMode

DEFAULT_ALPHA = 0.7
DEFAULT_CANDIDATES = 100


def check_alpha(alpha: object) -> float:
    """``alpha`` (the dense weight) as a float in [0, 1], else a ``ValueError``."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the dense weight) must be a number in [0, 1]; got {alpha!r}")
    return float(alpha)


def minmax(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] by their min and max; all equal gives all ones."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    lo, hi = v.min(), v.max()
    return np.ones_like(v) if hi <= lo else (v - lo) / (hi - lo)


def fuse(distances: np.ndarray, lexical_scores: np.ndarray, alpha: float) -> np.ndarray:
    """Fused scores in [0, 1] of candidates with Euclidean ``distances`` and BM25 ``lexical_scores``."""
    d = np.asarray(distances, dtype=np.float64)
    return alpha * minmax(-d * d) + (1.0 - alpha) * minmax(lexical_scores)


def __getattr__(name: str) -> Any:
    """Deprecated names: ``RETRIEVAL_MODES`` and ``check_mode`` are :class:`ragcun.store.modes.RetrievalMode` now."""
    if name in ("RETRIEVAL_MODES", "check_mode"):
        warnings.warn(f"ragcun.store.fusion.{name} is deprecated; use ragcun.store.modes.RetrievalMode",
                      DeprecationWarning, stacklevel=2)
        return tuple(m.value for m in RetrievalMode) if name == "RETRIEVAL_MODES" else RetrievalMode.parse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
