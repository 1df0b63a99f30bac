"""Objective presets (``--objective``) as λ weights of :class:`ragcun.losses.GaussianRAGLoss`'s components.

Light to import (no torch at import time): ``ragcun-train`` checks its arguments against it before loading anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from ragcun.losses import GaussianRAGLoss

COMPONENTS = ("contrastive", "isotropy", "predictive", "covariance", "margin")
PRESETS: dict[str, dict[str, float]] = {
    # L2 InfoNCE + SIGReg: the default.
    "gaussian-rag": {"contrastive": 1.0, "isotropy": 0.5},
    # The original prototype's best run: SIGReg 1.5 + JEPA predictive 1.2, no contrastive term.
    "jepa": {"isotropy": 1.5, "predictive": 1.2},
    # Comparisons: SIGReg alone, and the original prototype's covariance matching in place of SIGReg.
    "isotropy-only": {"isotropy": 1.0},
    "covariance": {"contrastive": 1.0, "covariance": 1.0},
}
# Components that rank documents against a query: in frozen mode their negatives are the cached corpus.
RANKING_COMPONENTS = ("contrastive", "margin")
# Components that shape the distribution: in frozen mode they also see a sample of corpus documents.
DISTRIBUTION_COMPONENTS = ("isotropy", "covariance")


def objective_weights(name: str, overrides: Mapping[str, float | None] | None = None) -> dict[str, float]:
    """The preset's λ of every component, with ``overrides`` (``None`` = keep the preset's) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown objective {name!r}; choose one of {tuple(PRESETS)}")
    weights = {c: PRESETS[name].get(c, 0.0) for c in COMPONENTS}
    for component, value in (overrides or {}).items():
        if component not in weights:
            raise ValueError(f"unknown loss component {component!r}; choose from {COMPONENTS}")
        if value is not None:
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"λ of {component} must be a finite number >= 0, got {value}")
            weights[component] = float(value)
    if not any(weights.values()):
        raise ValueError(f"objective {name!r}: every λ is 0, nothing to train")
    return weights


def build_loss(model, weights: Mapping[str, float], temperature: float | None = None, num_slices: int = 256) -> GaussianRAGLoss:
    """The :class:`GaussianRAGLoss` with these λs (components with λ = 0 are not built)."""
    from ragcun.losses import GaussianRAGLoss

    return GaussianRAGLoss(
        model,
        contrastive_weight=weights["contrastive"],
        isotropy_weight=weights["isotropy"],
        predictive_weight=weights["predictive"],
        covariance_weight=weights["covariance"],
        margin_weight=weights["margin"],
        temperature=temperature,
        num_slices=num_slices,
    )


def frozen_components(loss: GaussianRAGLoss, columns: list[Tensor], corpus_negatives: Tensor | None = None,
                      corpus_sample: Tensor | None = None) -> dict[str, Tensor]:
    """Weighted components on head outputs, with the cached corpus joining in where it helps.

    ``columns`` are (anchors, positives[, negatives]). ``corpus_negatives`` (M, D), corpus
    documents other than this batch's positives, are appended to the documents every anchor is
    ranked against; ``corpus_sample`` (K, D), random corpus documents, joins the embeddings whose
    distribution the isotropy components shape, so that the indexed documents, not only the
    batch, are pushed toward N(0, I).
    """
    out = {}
    for name, component in loss.components.items():
        cols = columns
        if name in RANKING_COMPONENTS and corpus_negatives is not None and len(corpus_negatives):
            cols = [*columns, corpus_negatives]
        elif name in DISTRIBUTION_COMPONENTS and corpus_sample is not None and len(corpus_sample):
            cols = [*columns, corpus_sample]
        out[name] = loss.weights[name] * component.compute(cols)
    return out
