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
dense mode it orders hits as the distance does; in hybrid mode hits keep the fused order.

A hybrid hit also has a BM25 score, and how far it is from the query's best one says something the
distance does not. A calibrator may carry :class:`HybridTerms`, fitted on labelled *hybrid* hits:

    P(relevant | d, s) = sigmoid(intercept + slope * d² + bm25 * s),    s = BM25 score / the query's best,

``s`` being the hit's :attr:`ragcun.store.hits.Hit.bm25_share` (in [0, 1]; the share of the best BM25 score
among the query's candidates, so a query's wording sets no scale). Hybrid hits use them when present,
the distance alone otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ragcun.io.atomic import write_json_atomic

FILE = "relevance_calibrator.json"
FORMAT = "ragcun.RelevanceCalibrator"
VERSION = 2
MIN_PAIRS = 20
_FIELDS = {"format": str, "version": int, "intercept": float, "slope": float, "n_pairs": int, "n_relevant": int,
           "fitted_on": str}
_HYBRID_FIELDS = {"intercept": float, "slope": float, "bm25": float, "n_pairs": int, "n_relevant": int}


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


def _checked_fields(data: Any, fields: dict[str, type], source: str) -> None:
    """``ValueError`` naming ``source`` and the field unless ``data`` is a dict holding exactly ``fields``, typed."""
    if not isinstance(data, dict) or set(data) != set(fields):
        raise ValueError(f"{source}: expected exactly the fields {sorted(fields)}")
    for name, kind in fields.items():
        value = data[name]
        ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
        if isinstance(value, bool) or not ok:
            raise ValueError(f"{source}: field {name!r} has the wrong type ({type(value).__name__})")


def _labels(y: ArrayLike, n: int) -> np.ndarray:
    """0/1 float labels for ``n`` pairs; ``ValueError`` for a length mismatch, too few pairs or a single class."""
    labels = np.asarray(y).ravel()
    if len(labels) != n:
        raise ValueError(f"got {n} distances and {len(labels)} labels")
    if n < MIN_PAIRS:
        raise ValueError(f"need at least {MIN_PAIRS} labelled pairs to calibrate; got {n}")
    labels = labels.astype(bool).astype(np.float64)
    if labels.min() == labels.max():
        raise ValueError("labels are all relevant or all irrelevant; a calibrator needs both")
    return labels


def _fit_raw(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """:func:`fit_logistic` on standardised columns of ``x``, returned as weights on the raw columns."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    w = fit_logistic((x - mu) / sd, y, l2)
    coef = w[1:] / sd
    return np.concatenate([[w[0] - coef @ mu], coef])


@dataclass(frozen=True)
class HybridTerms:
    """``P(relevant | d, s) = sigmoid(intercept + slope * d² + bm25 * s)`` for hybrid hits (``s``: BM25 share).

    ``n_pairs`` / ``n_relevant`` record the hybrid hits it was fitted on."""

    intercept: float
    slope: float
    bm25: float
    n_pairs: int = 0
    n_relevant: int = 0

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.intercept, self.slope, self.bm25)):
            raise ValueError(f"hybrid terms must be finite; got {self.intercept}, {self.slope}, {self.bm25}")
        if self.slope >= 0 or self.bm25 <= 0:
            raise ValueError("hybrid terms need relevance to fall with distance (slope < 0) and rise with the BM25 "
                             f"share (bm25 > 0); got slope {self.slope}, bm25 {self.bm25}")


@dataclass(frozen=True)
class RelevanceCalibrator:
    """``P(relevant | d) = sigmoid(intercept + slope * d²)`` for one model's Euclidean distances ``d``.

    ``n_pairs`` / ``n_relevant`` / ``fitted_on`` record what it was fitted on; ``hybrid`` the
    :class:`HybridTerms` for hybrid hits, when it has them (:meth:`fit_hybrid`). Call it on distances, and
    for hybrid hits their BM25 shares.
    """

    intercept: float
    slope: float
    n_pairs: int = 0
    n_relevant: int = 0
    fitted_on: str = ""
    hybrid: HybridTerms | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.intercept) and math.isfinite(self.slope)):
            raise ValueError(f"calibrator coefficients must be finite; got {self.intercept}, {self.slope}")
        if self.slope >= 0:
            raise ValueError(f"calibrator slope must be negative (relevance falls with distance); got {self.slope}")

    def __call__(self, distances: ArrayLike, bm25_shares: ArrayLike | None = None) -> np.ndarray:
        """``P(relevant)`` in (0, 1) for Euclidean ``distances``; ``inf`` gives 0. With ``bm25_shares`` (hybrid hits'
        :attr:`ragcun.store.hits.Hit.bm25_share`, one per distance) and :attr:`hybrid` terms, those are used."""
        d2 = _squared(distances)
        if bm25_shares is None or self.hybrid is None:
            return _sigmoid(self.intercept + self.slope * d2)
        s = np.asarray(bm25_shares, dtype=np.float64)
        if s.shape != d2.shape or np.isnan(s).any():
            raise ValueError(f"need one BM25 share (no NaN) per distance; got shape {s.shape} for {d2.shape}")
        h = self.hybrid
        return _sigmoid(h.intercept + h.slope * d2 + h.bm25 * s)

    @classmethod
    def fit(cls, distances: ArrayLike, relevant: ArrayLike, fitted_on: str = "", l2: float = 1e-4) -> RelevanceCalibrator:
        """Logistic regression of ``relevant`` (bools) on squared ``distances`` (Newton's method, tiny ridge ``l2``).

        ``ValueError`` with fewer than :data:`MIN_PAIRS` pairs, a single class, mismatched lengths,
        or pairs in which relevance does not fall with distance.
        """
        x = _squared(distances).ravel()
        y = _labels(relevant, len(x))
        intercept, slope = _fit_raw(x[:, None], y, l2)
        if not slope < 0:
            raise ValueError("in these pairs relevance does not fall with distance; cannot calibrate")
        return cls(float(intercept), float(slope), len(x), int(y.sum()), fitted_on)

    def fit_hybrid(self, distances: ArrayLike, bm25_shares: ArrayLike, relevant: ArrayLike,
                   l2: float = 1e-4) -> RelevanceCalibrator:
        """This calibrator with :class:`HybridTerms` fitted on labelled hybrid hits: their Euclidean ``distances``,
        BM25 shares and ``relevant`` bools (logistic regression on d² and the share). ``ValueError`` as for
        :meth:`fit`, for shares outside [0, 1], or where relevance does not rise with the share."""
        x = _squared(distances).ravel()
        s = np.asarray(bm25_shares, dtype=np.float64).ravel()
        if s.shape != x.shape or np.isnan(s).any() or (s < 0).any() or (s > 1).any():
            raise ValueError(f"need one BM25 share in [0, 1] per distance; got {len(s)} for {len(x)}")
        y = _labels(relevant, len(x))
        intercept, slope, bm25 = _fit_raw(np.stack([x, s], axis=1), y, l2)
        if not (slope < 0 and bm25 > 0):
            raise ValueError("in these hybrid hits relevance does not fall with distance and rise with the BM25 "
                             "share; cannot calibrate them")
        return replace(self, hybrid=HybridTerms(float(intercept), float(slope), float(bm25), len(x), int(y.sum())))

    def rescaled(self, distance_scale: float) -> RelevanceCalibrator:
        """The same calibrator for distances multiplied by ``distance_scale`` (> 0), as after the model's outputs are
        mapped by ``y ↦ s · R (y − μ)`` with R orthogonal: every probability stays exactly as it was."""
        if isinstance(distance_scale, bool) or not isinstance(distance_scale, (int, float)) \
                or not math.isfinite(distance_scale) or distance_scale <= 0:
            raise ValueError(f"distance_scale must be a finite number > 0; got {distance_scale!r}")
        hybrid = None if self.hybrid is None else replace(self.hybrid, slope=self.hybrid.slope / distance_scale ** 2)
        return RelevanceCalibrator(self.intercept, self.slope / distance_scale ** 2, self.n_pairs, self.n_relevant,
                                   f"{self.fitted_on} (distances rescaled by {distance_scale:.6g})".lstrip(), hybrid)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with format and version (``hybrid``: its terms or ``None``)."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibrator") -> RelevanceCalibrator:
        """Inverse of :meth:`to_dict` (version 1, without ``hybrid``, too); ``ValueError`` naming ``source`` and the
        field for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a relevance calibrator is a JSON object; got {type(data).__name__}")
        _checked_fields(data, _FIELDS if data.get("version") == 1 else _FIELDS | {"hybrid": object}, source)
        if data["format"] != FORMAT or data["version"] > VERSION:
            raise ValueError(f"{source}: not a {FORMAT} of version <= {VERSION}")
        hybrid = data.get("hybrid")
        try:
            if hybrid is not None:
                _checked_fields(hybrid, _HYBRID_FIELDS, f"{source}: hybrid")
                hybrid = HybridTerms(float(hybrid["intercept"]), float(hybrid["slope"]), float(hybrid["bm25"]),
                                     hybrid["n_pairs"], hybrid["n_relevant"])
            return cls(float(data["intercept"]), float(data["slope"]), data["n_pairs"], data["n_relevant"],
                       data["fitted_on"], hybrid)
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
