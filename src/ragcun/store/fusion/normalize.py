"""Per-query normalisations of one side's candidate scores (higher is better), one function each.

``fixed_floor`` (the stores' default; "TM2C2" in Bruch, Gai, Ingber, *An Analysis of Fusion Functions for
Hybrid Retrieval*, TOIS 2023) maps a floor that does not depend on the candidates to 0 and the query's
best candidate to 1; ``minmax`` maps the candidates' worst to 0 and best to 1; ``zscore`` centres the
candidates on their mean in units of their standard deviation (unbounded).
"""

from __future__ import annotations

import numpy as np

FIXED_FLOOR, MINMAX, ZSCORE = "fixed-floor", "minmax", "zscore"
NORMALIZATIONS = (FIXED_FLOOR, MINMAX, ZSCORE)
"""``normalization`` values of convex fusion."""
DEFAULT_NORMALIZATION = FIXED_FLOOR
DEFAULT_WEIGHTS = {FIXED_FLOOR: 0.8, MINMAX: 0.7, ZSCORE: 0.7}
"""The default dense weight of each normalisation (chosen on SciFact train and NQ questions; ``docs/benchmarks.md``)."""


def check_normalization(normalization: object) -> str:
    """``normalization`` if it is one of :data:`NORMALIZATIONS`, else a ``ValueError`` naming the argument."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got {normalization!r}")
    return str(normalization)


def fixed_floor(values: np.ndarray, floor: float) -> np.ndarray:
    """``values`` scaled so that ``floor`` is 0 and their maximum 1, clipped to [0, 1] (a value below the floor
    is 0); a maximum not above the floor gives all zeros."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    top = v.max()
    return np.zeros_like(v) if top <= floor else np.clip((v - floor) / (top - floor), 0.0, 1.0)


def minmax(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] by their min and max; all equal gives all ones."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    lo, hi = v.min(), v.max()
    return np.ones_like(v) if hi <= lo else (v - lo) / (hi - lo)


def zscore(values: np.ndarray) -> np.ndarray:
    """``values`` minus their mean, over their (population) standard deviation; all equal gives all zeros."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    sd = v.std()
    return np.zeros_like(v) if sd <= 0 else (v - v.mean()) / sd
