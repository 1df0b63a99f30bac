"""``RelevanceCalibrator``: a score a user can threshold, ``P(relevant | distance)``, fitted on labelled hits.

:mod:`ragcun.scoring.distance_law`' distance law answers "is this document closer than a random one?", which
almost every retrieved document is, and a fused hybrid score is relative to one query's candidates
(the best scores near 1 whatever the query). Neither says how likely a hit is to be *relevant*.
A calibrator does (Platt scaling, Platt 1999): for a model's squared Euclidean distance ``d²``
between query and document,

    P(relevant | d) = sigmoid(intercept + slope * d²),    slope < 0,

fitted by logistic regression on labelled (query, retrieved document) pairs: the top hits of
queries with relevance judgements. Linear in ``d²`` because that is the log-likelihood ratio of
two Gaussian laws of the query-document difference that differ in scale (relevant pairs lie
closer), which is what a Gaussian model is trained to produce. One calibrator belongs to one model
(its distances): it is saved in the model folder (:data:`FILE`), loaded with the model, and used by
the stores' ``score_mode="relevance"``. It ranks nothing: the score falls with distance, so in
dense mode it orders hits as the distance does; in hybrid mode hits keep the fused order and
each carries the probability its distance implies.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ragcun.io.atomic import write_json_atomic

FILE = "relevance_calibrator.json"
FORMAT = "ragcun.RelevanceCalibrator"
VERSION = 1
MIN_PAIRS = 20
_FIELDS = {"format": str, "version": int, "intercept": float, "slope": float, "n_pairs": int, "n_relevant": int,
           "fitted_on": str}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _squared(distances: ArrayLike, what: str = "distances") -> np.ndarray:
    d = np.asarray(distances, dtype=np.float64)
    if np.isnan(d).any() or (d < 0).any():
        raise ValueError(f"{what} must be non-negative numbers (no NaN)")
    return d * d


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-4) -> np.ndarray:
    """Weights ``[intercept, w_1, ..., w_F]`` of a logistic regression of 0/1 ``labels`` (N,) on ``features``
    (N, F) by Newton's method with a tiny ridge ``l2``; both classes must be present. Standardise the
    features first: the ridge and the convergence test assume unit scale."""
    y = np.asarray(labels, dtype=np.float64)
    x = np.concatenate([np.ones((len(y), 1)), np.asarray(features, dtype=np.float64)], axis=1)
    w = np.zeros(x.shape[1])
    w[0] = math.log(y.mean() / (1 - y.mean()))
    for _ in range(100):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


@dataclass(frozen=True)
class RelevanceCalibrator:
    """``P(relevant | d) = sigmoid(intercept + slope * d²)`` for one model's Euclidean distances ``d``.

    ``n_pairs`` / ``n_relevant`` / ``fitted_on`` record what it was fitted on. Call it on distances.
    """

    intercept: float
    slope: float
    n_pairs: int = 0
    n_relevant: int = 0
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.intercept) and math.isfinite(self.slope)):
            raise ValueError(f"calibrator coefficients must be finite; got {self.intercept}, {self.slope}")
        if self.slope >= 0:
            raise ValueError(f"calibrator slope must be negative (relevance falls with distance); got {self.slope}")

    def __call__(self, distances: ArrayLike) -> np.ndarray:
        """``P(relevant)`` in (0, 1) for Euclidean ``distances``; ``inf`` gives 0."""
        return _sigmoid(self.intercept + self.slope * _squared(distances))

    @classmethod
    def fit(cls, distances: ArrayLike, relevant: ArrayLike, fitted_on: str = "", l2: float = 1e-4) -> RelevanceCalibrator:
        """Logistic regression of ``relevant`` (bools) on squared ``distances`` (Newton's method, tiny ridge ``l2``).

        ``ValueError`` with fewer than :data:`MIN_PAIRS` pairs, a single class, mismatched lengths,
        or pairs in which relevance does not fall with distance.
        """
        x = _squared(distances).ravel()
        y = np.asarray(relevant).ravel()
        if len(x) != len(y):
            raise ValueError(f"got {len(x)} distances and {len(y)} labels")
        if len(x) < MIN_PAIRS:
            raise ValueError(f"need at least {MIN_PAIRS} labelled pairs to calibrate; got {len(x)}")
        y = y.astype(bool).astype(np.float64)
        if y.min() == y.max():
            raise ValueError("labels are all relevant or all irrelevant; a calibrator needs both")
        mu, sd = x.mean(), x.std()
        w = fit_logistic(((x - mu) / (sd if sd > 0 else 1.0))[:, None], y, l2)
        slope = w[1] / (sd if sd > 0 else 1.0)
        if not slope < 0:
            raise ValueError("in these pairs relevance does not fall with distance; cannot calibrate")
        return cls(float(w[0] - slope * mu), float(slope), len(x), int(y.sum()), fitted_on)

    def rescaled(self, distance_scale: float) -> RelevanceCalibrator:
        """The same calibrator for distances multiplied by ``distance_scale`` (> 0), as after the model's outputs are
        mapped by ``y ↦ s · R (y − μ)`` with R orthogonal: every probability stays exactly as it was."""
        if isinstance(distance_scale, bool) or not isinstance(distance_scale, (int, float)) \
                or not math.isfinite(distance_scale) or distance_scale <= 0:
            raise ValueError(f"distance_scale must be a finite number > 0; got {distance_scale!r}")
        return RelevanceCalibrator(self.intercept, self.slope / distance_scale ** 2, self.n_pairs, self.n_relevant,
                                   f"{self.fitted_on} (distances rescaled by {distance_scale:.6g})".lstrip())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with format and version."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibrator") -> RelevanceCalibrator:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming ``source`` and the field for anything else."""
        if not isinstance(data, dict) or set(data) != set(_FIELDS):
            raise ValueError(f"{source}: a relevance calibrator holds exactly {sorted(_FIELDS)}")
        for name, kind in _FIELDS.items():
            value = data[name]
            ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
            if isinstance(value, bool) or not ok:
                raise ValueError(f"{source}: field {name!r} has the wrong type ({type(value).__name__})")
        if data["format"] != FORMAT or data["version"] > VERSION:
            raise ValueError(f"{source}: not a {FORMAT} of version <= {VERSION}")
        try:
            return cls(float(data["intercept"]), float(data["slope"]), data["n_pairs"], data["n_relevant"],
                       data["fitted_on"])
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def save(self, folder: str | Path) -> Path:
        """Write :data:`FILE` into ``folder`` atomically; returns its path."""
        path = Path(folder) / FILE
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> RelevanceCalibrator | None:
        """The calibrator saved in model ``folder``; ``None`` when it has none; ``ValueError`` when it is corrupt."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: corrupt relevance calibrator ({exc})") from None
        return cls.from_dict(data, str(path))
