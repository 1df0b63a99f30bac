"""Fold a corpus-fitted similarity transform into a head's last layer: L2 rankings stay exactly the same.

L2 ranking ignores a common shift, a rotation and a global scale of all embeddings, so folding
``y ↦ s · R (y − μ)`` into the head's last ``Dense`` layer (μ the corpus mean, R orthogonal, s > 0)
changes no ranking; every distance is multiplied by ``s``. :func:`recentre_head` folds the shift and
scale alone (R = I), after training; :func:`similarity_fit_head` (the label-free default,
``--objective similarity``) rotates onto the corpus's principal axes and scales, about the origin unless asked
to centre too (``--objective similarity-centred``). All choose
``s`` so that the corpus's outputs have ``E‖y − μ‖² = D``: unit variance per dimension on average,
the mean squared random-pair distance (``2D``) that :mod:`ragcun.scoring.distance_law` assumes.
"""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.modules import Dense


def _corpus_outputs(outputs: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    """``outputs`` as a float64 (N >= 2, D) tensor, else a ``ValueError`` naming ``what``."""
    y = torch.as_tensor(np.asarray(outputs), dtype=torch.float64)
    if y.dim() != 2 or y.size(0) < 2:
        raise ValueError(f"{what} needs an (N >= 2, D) array of embeddings, got shape {tuple(y.shape)}")
    return y


def _fold(model, rotation: torch.Tensor, mean: torch.Tensor, scale: float, what: str) -> None:
    """Replace the last layer's ``y = W x + b`` by ``scale · rotation (y − mean)``."""
    dense = model[len(model) - 1]
    if not isinstance(dense, Dense) or not isinstance(dense.activation_function, torch.nn.Identity):
        raise ValueError(f"{what} needs a head ending in a Dense layer without activation")
    with torch.no_grad():
        w, b = dense.linear.weight, dense.linear.bias
        r = (scale * rotation).to(w.device)
        w.copy_((r @ w.double()).to(w.dtype))
        b.copy_((r @ (b.double() - mean.to(b.device))).to(b.dtype))


def _unit_variance_scale(centred: torch.Tensor, what: str) -> float:
    """The ``s`` that gives ``centred`` rows unit variance per dimension on average (unbiased): ``E‖y − μ‖² = D``."""
    spread = float(centred.pow(2).sum() / ((centred.size(0) - 1) * centred.size(1)))
    if not np.isfinite(spread) or spread <= 0:
        raise ValueError(f"{what}: the embeddings have no variance")
    return 1.0 / spread ** 0.5


def recentre_head(model, outputs: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Fold centring and scaling by ``outputs`` (the model's embeddings of the corpus, N × D) into the last layer.

    Returns the removed shift's norm and the scale divided out (every distance is divided by it).
    """
    y = _corpus_outputs(outputs, "recentre_head")
    mean = y.mean(0)
    scale = _unit_variance_scale(y - mean, "recentre_head")
    _fold(model, torch.eye(y.size(1), dtype=torch.float64), mean, scale, "recentre_head")
    return {"shift_norm": float(mean.norm()), "scale": 1.0 / scale}


def similarity_fit_head(model, outputs: np.ndarray | torch.Tensor, centre: bool = False) -> dict[str, float]:
    """Fold ``y ↦ s · R (y − c)`` fitted on ``outputs`` (the model's embeddings of the corpus, N × D) into the last layer.

    R is the rotation onto their principal axes (largest variance first: the corpus's outputs come out
    uncorrelated), ``s`` the scale giving them ``E‖y − μ‖² = D`` (μ their mean), and ``c`` = μ when ``centre``
    (the outputs come out centred too), else 0: every norm is then multiplied by ``s`` as well as every
    distance, which keeps the hybrid fusion's fixed floors (measured from the origin) and so every ranking.
    Returns the removed shift's norm (0 without ``centre``) and ``distance_scale`` = s.
    """
    y = _corpus_outputs(outputs, "similarity_fit_head")
    mean = y.mean(0)
    centred = y - mean
    scale = _unit_variance_scale(centred, "similarity_fit_head")
    _, eigvec = torch.linalg.eigh(centred.T @ centred)
    rotation = eigvec.flip(1).T  # rows: principal axes, largest variance first
    shift = mean if centre else torch.zeros_like(mean)
    _fold(model, rotation, shift, scale, "similarity_fit_head")
    return {"shift_norm": float(shift.norm()), "distance_scale": scale}
