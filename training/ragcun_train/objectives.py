"""Objective presets (``--objective``) as λ weights of :class:`ragcun.losses.GaussianRAGLoss`'s components.

Light to import (no torch at import time): ``ragcun-train`` checks its arguments against it before loading anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcun.losses import GaussianRAGLoss

COMPONENTS = ("contrastive", "isotropy", "predictive", "covariance", "margin", "distil")
PRESETS: dict[str, dict[str, float]] = {
    # L2 InfoNCE + SIGReg: the default.
    "gaussian-rag": {"contrastive": 1.0, "isotropy": 0.5},
    # JEPA: SIGReg 1.5 + the predictive term 1.2, no contrastive term.
    "jepa": {"isotropy": 1.5, "predictive": 1.2},
    # Comparisons: SIGReg alone, and covariance matching in place of SIGReg (isotropy-only reorders the
    # ranking: opt-in on a corpus, measured in the README's training section).
    "isotropy-only": {"isotropy": 1.0},
    "covariance": {"contrastive": 1.0, "covariance": 1.0},
    # Label-free: MarginMSE on the hybrid (L2 + BM25) teacher's margins over pseudo-queries cut from
    # the corpus (ragcun_train.distil); SIGReg off by default (--lambda-isotropy adds it; see docs/benchmarks.md).
    # Needs --format corpus.
    "distil": {"distil": 1.0},
    # Label-free, no training: a similarity transform (PCA rotation, one scale, about the origin) fitted to the
    # corpus in closed form (ragcun_train.similarity); every ranking, dense and hybrid, stays exactly as it was.
    # The default for a corpus. similarity-centred also centres on the corpus mean: dense rankings stay, but the
    # fixed-floor hybrid fusion (floors measured from the origin) moves: opt-in, measured in the README.
    "similarity": {},
    "similarity-centred": {},
}
#: Objectives that train the encoder itself (never a frozen base) on an unlabelled corpus.
ENCODER_OBJECTIVES = ("distil",)
#: Objectives fitted in closed form, with no loss and no gradient step: their λ are all 0 and cannot be set.
CLOSED_FORM_OBJECTIVES = ("similarity", "similarity-centred")
#: Transformer layers an encoder objective trains on CPU (the top ones; the rest stay frozen: minutes, not hours).
TRAINED_LAYERS_ON_CPU = 2


def objective_weights(name: str, overrides: Mapping[str, float | None] | None = None) -> dict[str, float]:
    """The preset's λ of every component, with ``overrides`` (``None`` = keep the preset's) applied; all 0 for a
    closed-form objective (:data:`CLOSED_FORM_OBJECTIVES`), which takes no overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown objective {name!r}; choose one of {tuple(PRESETS)}")
    weights = {c: PRESETS[name].get(c, 0.0) for c in COMPONENTS}
    if name in CLOSED_FORM_OBJECTIVES:
        given = sorted(c for c, v in (overrides or {}).items() if v is not None)
        if given:
            raise ValueError(f"objective {name!r} trains nothing (a closed-form fit); λ of {', '.join(given)} does not apply")
        return weights
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
        distil_weight=weights.get("distil", 0.0),
        temperature=temperature,
        num_slices=num_slices,
    )

