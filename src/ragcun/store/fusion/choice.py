"""``HybridFusion``: how a hybrid search turns each candidate's two scores into one fused score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ragcun.store.fusion.normalize import (
    DEFAULT_NORMALIZATION,
    DEFAULT_WEIGHTS,
    FIXED_FLOOR,
    MINMAX,
    check_normalization,
    fixed_floor,
    minmax,
    zscore,
)
from ragcun.store.fusion.rrf import DEFAULT_RRF_K, check_rrf_k, rrf

DEFAULT_ALPHA = DEFAULT_WEIGHTS[DEFAULT_NORMALIZATION]
"""The stores' default dense weight (that of their default normalisation, fixed floors)."""
CONVEX, RRF = "convex", "rrf"
FUSIONS = (CONVEX, RRF)
"""``fusion`` names; a callable (:data:`FusionFn`) is the third choice."""
FusionFn = Callable[[np.ndarray, np.ndarray], ArrayLike]
"""A user fusion: ``fn(dense_scores, sparse_scores) -> fused`` (see :class:`HybridFusion`)."""
FusionMethod = str | FusionFn


def check_alpha(alpha: object) -> float:
    """``alpha`` (the dense weight) as a float in [0, 1], else a ``ValueError``."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the dense weight) must be a number in [0, 1]; got {alpha!r}")
    return float(alpha)


def check_fusion(fusion: object) -> FusionMethod:
    """``fusion`` if it is one of :data:`FUSIONS` or a callable, else a ``ValueError`` naming the argument."""
    if callable(fusion) or fusion in FUSIONS:
        return fusion
    raise ValueError(f"fusion must be one of {FUSIONS} or a callable fn(dense_scores, sparse_scores); got {fusion!r}")


def _by_side(values: np.ndarray, normalization: str, floor: float) -> np.ndarray:
    if normalization == FIXED_FLOOR:
        return fixed_floor(values, floor)
    return minmax(values) if normalization == MINMAX else zscore(values)


@dataclass(frozen=True)
class HybridFusion:
    """A checked fusion choice: ``fusion``, its ``normalization``, dense weight ``alpha`` and RRF's ``rrf_k``.

    ``alpha=None`` is the normalisation's default weight (:data:`ragcun.store.fusion.normalize.DEFAULT_WEIGHTS`:
    0.8 for fixed floors, 0.7 for min–max and z-scores).

    Every candidate (the union of each side's top ``candidates``) carries both scores: its dense score
    ``-distance²`` (the Gaussian log-likelihood up to constants; on unit vectors cosine similarity up
    to an affine map) and its BM25 score (0 where no query term occurs). ``fusion``:

    - ``"convex"`` (default): ``alpha * dense_norm + (1 - alpha) * sparse_norm``, each side normalised
      per query by ``normalization`` (:mod:`ragcun.store.fusion.normalize`): ``"fixed-floor"`` (default;
      BM25 floor 0, dense floor the query's antipode ``-4 |q|²``, i.e. cosine −1 on a model whose vectors
      share one norm, as the bundled model's do), ``"minmax"`` or ``"zscore"``. Fused scores lie in [0, 1]
      for ``"fixed-floor"`` and ``"minmax"`` (1: best on both sides); z-score mixes are unbounded.
    - ``"rrf"``: reciprocal-rank fusion with constant ``rrf_k`` (:func:`ragcun.store.fusion.rrf.rrf`);
      scores lie in (0, 2 / (rrf_k + 1)]; ``alpha`` and ``normalization`` are unused.
    - a callable ``fn(dense_scores, sparse_scores) -> fused``: two float64 arrays of equal length over
      the candidates (``-distance²`` and raw BM25; neither holds NaN, since every candidate has both
      scores), returning one finite number per candidate, higher is better; anything else is a
      ``ValueError`` naming ``fusion``.

    A sparse search ranks by BM25 alone (convex, ``alpha`` 0, under ``normalization``) whatever ``fusion``.
    """

    fusion: FusionMethod = CONVEX
    normalization: str = DEFAULT_NORMALIZATION
    alpha: float | None = None
    rrf_k: int = DEFAULT_RRF_K

    def __post_init__(self) -> None:
        check_fusion(self.fusion)
        check_normalization(self.normalization)
        object.__setattr__(self, "alpha", DEFAULT_WEIGHTS[self.normalization] if self.alpha is None
                           else check_alpha(self.alpha))
        check_rrf_k(self.rrf_k)

    def scores(self, distances: np.ndarray, sparse_scores: np.ndarray, query_sq_norm: float) -> np.ndarray:
        """Fused scores of candidates at Euclidean ``distances`` with BM25 ``sparse_scores``, for a query
        vector of squared norm ``query_sq_norm``."""
        d = np.asarray(distances, dtype=np.float64)
        dense, sparse = -d * d, np.asarray(sparse_scores, dtype=np.float64)
        if self.fusion == RRF:
            return rrf(dense, sparse, self.rrf_k)
        if callable(self.fusion):
            return self._checked(self.fusion(dense.copy(), sparse.copy()), len(d))
        alpha = float(self.alpha)  # type: ignore[arg-type]  # set by __post_init__
        return alpha * _by_side(dense, self.normalization, -4.0 * float(query_sq_norm)) + \
            (1.0 - alpha) * self.sparse_only(sparse)

    def sparse_only(self, sparse_scores: np.ndarray) -> np.ndarray:
        """The BM25 side alone, normalised as :attr:`normalization` says (a sparse search's fused scores)."""
        return _by_side(np.asarray(sparse_scores, dtype=np.float64), self.normalization, 0.0)

    def _checked(self, fused: ArrayLike, n: int) -> np.ndarray:
        name = getattr(self.fusion, "__name__", type(self.fusion).__name__)
        try:
            out = np.asarray(fused, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fusion callable {name} must return {n} numbers; got {type(fused).__name__} ({exc})") from None
        if out.shape != (n,):
            raise ValueError(f"fusion callable {name} must return one score per candidate, shape ({n},); got {out.shape}")
        if not np.isfinite(out).all():
            raise ValueError(f"fusion callable {name} returned non-finite scores (NaN or inf)")
        return out
