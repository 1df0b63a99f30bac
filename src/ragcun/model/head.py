"""The Gaussian head: sentence-transformers' own modules appended after a base encoder.

The head is built from ``sentence_transformers`` modules only (``Normalize``, ``Dense``,
``Dropout``), so a saved Gaussian model loads with a plain ``SentenceTransformer(path)``: since
sentence-transformers 6, a module class from any other package needs ``trust_remote_code=True``.

Layout: ``Normalize`` (unit-length base embedding, the head's input) followed by

- ``"linear"``: ``Dense(d, out)``;
- ``"mlp"`` (the original ragcun prototype's head): ``Dense(d, 2d, GELU)`` → ``Dropout(0.1)`` → ``Dense(2d, out)``;
- ``"residual"``: ``Dense(d, out)`` → ``Dense(out, out, GELU, use_residual=True)`` → ``Dense(out, out)``,
  that is ``y = B(z + GELU(W z + b)) + c`` with ``z = A x + a``. The branch ``(W, b)`` starts at
  zero and ``(B, c)`` at the identity, so a new residual head is the linear map ``z``; the
  last layer is where ``recentre_head`` folds a corpus mean and scale.

No activation on the last layer and no normalisation of the output.
"""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.modules import Dense, Normalize
from sentence_transformers.sentence_transformer.modules import Dropout
from torch import nn

from ragcun.model.choices import HEADS


def build_head(in_dim: int, out_dim: int, head: str = "linear", dropout: float = 0.1) -> list[nn.Module]:
    """The head's modules, input normalisation first."""
    if head == "linear":
        layers: list[nn.Module] = [Dense(in_dim, out_dim, activation_function=nn.Identity())]
    elif head == "mlp":
        layers = [
            Dense(in_dim, 2 * in_dim, activation_function=nn.GELU()),
            Dropout(dropout),
            Dense(2 * in_dim, out_dim, activation_function=nn.Identity()),
        ]
    elif head == "residual":
        branch = Dense(out_dim, out_dim, activation_function=nn.GELU(), use_residual=True)
        last = Dense(out_dim, out_dim, activation_function=nn.Identity())
        set_affine(branch, np.zeros((out_dim, out_dim)), np.zeros(out_dim))
        set_affine(last, np.eye(out_dim), np.zeros(out_dim))
        layers = [Dense(in_dim, out_dim, activation_function=nn.Identity()), branch, last]
    else:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    return [Normalize(), *layers]


def set_affine(dense: Dense, weight: np.ndarray, bias: np.ndarray) -> None:
    """Set a ``Dense`` layer to ``y = weight @ x + bias``."""
    out_dim, in_dim = dense.linear.weight.shape
    if weight.shape != (out_dim, in_dim) or bias.shape != (out_dim,):
        raise ValueError(
            f"affine map of shape {weight.shape} + {bias.shape} does not fit the head's ({out_dim}, {in_dim}) layer"
        )
    with torch.no_grad():
        dense.linear.weight.copy_(torch.as_tensor(weight, dtype=dense.linear.weight.dtype))
        dense.linear.bias.copy_(torch.as_tensor(bias, dtype=dense.linear.bias.dtype))


def identity_map(x: np.ndarray, out_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Affine map that centres ``x`` and scales it to unit variance per dimension on average.

    With ``out_dim`` equal to the input dimension the map is a multiple of the identity, so L2
    ranking on its outputs equals cosine ranking on the unit-length inputs. With fewer output
    dimensions it keeps the top principal directions (PCA), which preserves ranking approximately.
    ``x`` holds unit-length base embeddings (N, D); with N = 0 the map assumes a zero mean and a
    total variance of 1.
    """
    d = x.shape[1]
    mean = x.mean(0) if len(x) else np.zeros(d)
    total_var = float(((x - mean) ** 2).sum(1).mean()) if len(x) > 1 else 1.0
    if out_dim == d or len(x) < 2:
        basis = np.eye(d)[:out_dim]
        kept_var = total_var * out_dim / d
    else:
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        basis = vt[:out_dim]
        kept_var = float((s[:out_dim] ** 2).sum() / max(1, len(x)))
    scale = np.sqrt(out_dim / max(kept_var, 1e-12))
    weight = scale * basis
    return weight, -weight @ mean


def whitening_map(x: np.ndarray, out_dim: int, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Affine map under which ``x`` (N, D) has mean 0 and covariance I.

    ZCA (``W = Σ^{-1/2}``) when ``out_dim`` equals D; PCA whitening onto the top ``out_dim``
    principal directions otherwise.
    """
    n, d = x.shape
    if n < 2:
        raise ValueError("whitening needs at least 2 embeddings")
    mean = x.mean(0)
    cov = np.cov(x - mean, rowvar=False).reshape(d, d)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
    inv_sqrt = 1.0 / np.sqrt(eigval + eps)
    if out_dim == d:
        weight = (eigvec * inv_sqrt) @ eigvec.T
    else:
        weight = (eigvec[:, :out_dim] * inv_sqrt[:out_dim]).T
    return weight, -weight @ mean
