"""The random-pair distance law: a score in [0, 1] for Euclidean distances between unnormalised embeddings.

This is not a relevance probability (that is :mod:`ragcun.scoring.calibrator`'s ``P(relevant)``); it is
the chance that an *unrelated* document lies farther away.

If a query ``x`` and an *unrelated* document ``y`` are independent draws from ``N(mu, s2 * I_D)``,
``||x - y||^2 / (2 * s2)`` follows a chi-squared law with ``D`` degrees of freedom. The score of a
document at distance ``d`` is the survival function

    score(d) = P(||x - y|| > d) = chi2.sf(d^2 / (2 * s2), D),

the probability that an unrelated document lies *farther away* than this one. ``1 - score`` is a
p-value: the chance that an unrelated document would lie at least this close. The score is 1 at
``d = 0``, decreases with distance, and means the same for every query, so one
``score_threshold`` behaves alike across queries. A mean shift never matters (only differences
enter), and ``s2`` absorbs a global scale.

Real embeddings are rarely exactly ``N(0, I)``: the scale differs, dimensions correlate, and
documents of one corpus resemble each other more than independent draws. The *empirical* variant
measures the store's own distribution of distances between random pairs of stored vectors and
moment-matches a scaled chi-squared law to it (``d^2 / 2 ~ scale * chi2(dof)``; Satterthwaite's
approximation, exact for isotropic Gaussians where ``dof = D`` and ``scale = s2``), so the
"unrelated document" is a random document of *this* corpus.

Default (``mode="auto"``): the empirical fit once the store holds ``min_fit`` vectors, refreshed
whenever the store has grown or shrunk by ``refit_change`` (20%) since the last fit; before that,
the exact ``N(0, I_D)`` law. When the sampled vectors are (nearly) all identical there is no
distance law to fit: the scorer then falls back to the ``N(0, I_D)`` law (``source="isotropic"``,
``n_vectors`` set to the store's size, so it is retried after the same 20% change).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import chdtrc

from ragcun.index.protocol import VectorIndex

MODES = ("auto", "isotropic", "empirical")
LAW_SOURCES = ("isotropic", "empirical")
_NUMBER = (int, float)
_SETTINGS = {"mode": (str,), "min_fit": (int,), "refit_change": _NUMBER, "sample": (int,), "n_pairs": (int,),
             "seed": (int,)}
_LAW = {"dof": _NUMBER, "scale": _NUMBER, "source": (str,), "n_vectors": (int,)}


def chi2_survival(distances: np.ndarray | float, dof: float, scale: float = 1.0) -> np.ndarray:
    """``P(||x - y|| > d)`` for ``d^2 / 2 ~ scale * chi2(dof)``: 1 at ``d = 0``, falling to 0; ``inf`` gives 0."""
    d = np.asarray(distances, dtype=np.float64)
    if not (d >= 0).all():  # NaN fails too
        raise ValueError("distances must be non-negative numbers")
    return chdtrc(dof, d * d / (2.0 * scale))  # chi2.sf without scipy.stats' per-call overhead


@dataclass(frozen=True)
class DistanceLaw:
    """A fitted distance law: ``d^2 / 2 ~ scale * chi2(dof)``; call it on distances to get survival scores in [0, 1]."""

    dof: float
    scale: float = 1.0
    source: str = "isotropic"
    n_vectors: int = 0

    def __call__(self, distances: np.ndarray | float) -> np.ndarray:
        """Survival scores in [0, 1] for Euclidean ``distances`` (see the module docstring)."""
        return chi2_survival(distances, self.dof, self.scale)

    @classmethod
    def isotropic(cls, dim: int, variance: float = 1.0) -> DistanceLaw:
        """The exact law for independent ``N(mu, variance * I_dim)`` vectors."""
        return cls(dof=float(dim), scale=float(variance), source="isotropic")

    @classmethod
    def fit(cls, vectors: np.ndarray, n_pairs: int = 4096, seed: int = 0) -> DistanceLaw:
        """Moment-match ``scale * chi2(dof)`` to half the squared distances of random pairs of ``vectors``."""
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need at least 2 vectors of shape (N, D) to fit; got {x.shape}")
        rng = np.random.default_rng(seed)
        i = rng.integers(0, len(x), n_pairs)
        j = (i + rng.integers(1, len(x), n_pairs)) % len(x)  # never pairs a vector with itself
        half_sq = 0.5 * ((x[i] - x[j]) ** 2).sum(axis=1)
        mean, var = half_sq.mean(), half_sq.var()
        if mean <= 0 or var <= 0:
            raise ValueError("stored vectors are (nearly) identical; cannot fit a distance law")
        return cls(dof=2 * mean * mean / var, scale=var / (2 * mean), source="empirical", n_vectors=len(x))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class DistanceLawScorer:
    """Keeps a :class:`DistanceLaw` current for a store (modes ``auto``, ``isotropic``, ``empirical``).

    ``sample`` vectors (at most) are read from the index for a fit; the fit is deterministic for a
    given store content (fixed ``seed``).
    """

    def __init__(self, mode: str = "auto", *, min_fit: int = 32, refit_change: float = 0.2,
                 sample: int = 2048, n_pairs: int = 4096, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"score mode must be one of {MODES}; got {mode!r}")
        self.mode, self.min_fit, self.refit_change = mode, min_fit, refit_change
        self.sample, self.n_pairs, self.seed = sample, n_pairs, seed
        self.law: DistanceLaw | None = None

    def current(self, index: VectorIndex, ids: Callable[[], Sequence[str]], count: int | None = None) -> DistanceLaw:
        """The distance law for ``index`` now, refitting (from ``ids()``) if the store changed enough.

        ``count``: how many vectors the index holds, when the caller knows it (asking a database index costs a query)."""
        count, dim = index.count if count is None else count, index.dim
        if dim is None:
            return DistanceLaw.isotropic(1)
        use_fit = self.mode == "empirical" or (self.mode == "auto" and count >= self.min_fit)
        if not use_fit or count < 2:
            isotropic = DistanceLaw.isotropic(dim)
            if self.law != isotropic:  # drops a fallback law's n_vectors (below): a later fit is not delayed
                self.law = isotropic
            return self.law
        law = self.law
        if law is None or law.n_vectors == 0 or abs(count - law.n_vectors) > self.refit_change * law.n_vectors:
            all_ids = list(ids())
            rng = np.random.default_rng(self.seed)
            pick = sorted(rng.choice(len(all_ids), min(self.sample, len(all_ids)), replace=False))
            vectors = index.get_vectors([all_ids[p] for p in pick])
            try:
                fitted = DistanceLaw.fit(vectors, self.n_pairs, self.seed)
            except ValueError:  # identical vectors: no spread to fit (module docstring)
                fitted = DistanceLaw.isotropic(dim)
            law = self.law = DistanceLaw(fitted.dof, fitted.scale, fitted.source, count)
        return law

    def to_dict(self) -> dict[str, Any]:
        """Settings and the current law, JSON-ready."""
        return {"mode": self.mode, "min_fit": self.min_fit, "refit_change": self.refit_change,
                "sample": self.sample, "n_pairs": self.n_pairs, "seed": self.seed,
                "law": self.law.to_dict() if self.law else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistanceLawScorer:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming the field for anything it did not write."""
        if not isinstance(data, dict) or set(data) != {*_SETTINGS, "law"}:
            raise ValueError(f"scorer state must hold exactly {sorted({*_SETTINGS, 'law'})}")
        for name, types in _SETTINGS.items():
            _check_type(f"scorer {name}", data[name], types)
        law = data["law"]
        if law is not None:
            if not isinstance(law, dict) or set(law) != set(_LAW):
                raise ValueError(f"scorer law must hold exactly {sorted(_LAW)}")
            for name, types in _LAW.items():
                _check_type(f"scorer law {name}", law[name], types)
            if not (law["dof"] > 0 and law["scale"] > 0 and law["n_vectors"] >= 0) or law["source"] not in LAW_SOURCES:
                raise ValueError(f"scorer law is out of range: {law!r}")
        scorer = cls(**{name: data[name] for name in _SETTINGS})
        scorer.law = DistanceLaw(**law) if law else None
        return scorer


def _check_type(what: str, value: Any, types: tuple[type, ...]) -> None:
    """``ValueError`` unless ``value`` is one of ``types`` (a ``bool`` is never a number here)."""
    if isinstance(value, bool) or not isinstance(value, types):
        raise ValueError(f"{what} has the wrong type ({type(value).__name__})")


DEPRECATED_NAMES = {"RelevanceScore": "DistanceLaw", "RelevanceScorer": "DistanceLawScorer",
                    "chi2_relevance": "chi2_survival"}
"""Old name -> new name: "relevance" now means only the calibrator's ``P(relevant)``."""


def __getattr__(name: str) -> Any:
    """The deprecated names of :data:`DEPRECATED_NAMES`, with a ``DeprecationWarning``."""
    if name in DEPRECATED_NAMES:
        new = DEPRECATED_NAMES[name]
        warnings.warn(f"ragcun.scoring.distance_law.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
