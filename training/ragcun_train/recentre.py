"""Re-fit a trained head's mean and scale on a corpus: L2 rankings stay exactly the same.

L2 ranking ignores a common shift and a global scale of all embeddings, so folding
``y ↦ (y − μ) / s`` into the head's last ``Dense`` layer (μ the corpus mean, s² its average
per-dimension variance) centres the indexed documents and gives them unit variance without
changing any ranking — what a Gaussian store's probabilistic score needs.
"""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.modules import Dense


def recentre_head(model, outputs: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Fold centring and scaling by ``outputs`` (the model's embeddings of the corpus, N × D) into the last layer.

    Returns the removed shift's norm and the scale divided out.
    """
    dense = model[len(model) - 1]
    if not isinstance(dense, Dense) or not isinstance(dense.activation_function, torch.nn.Identity):
        raise ValueError("recentre_head needs a head ending in a Dense layer without activation")
    y = torch.as_tensor(np.asarray(outputs), dtype=torch.float64)
    if y.dim() != 2 or y.size(0) < 2:
        raise ValueError(f"recentre_head needs an (N >= 2, D) array of embeddings, got shape {tuple(y.shape)}")
    mean = y.mean(0)
    scale = float(y.var(0).mean().sqrt())
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("recentre_head: the embeddings have no variance")
    with torch.no_grad():
        w, b = dense.linear.weight, dense.linear.bias
        w.div_(scale)
        b.copy_(((b.double() - mean.to(b.device)) / scale).to(b.dtype))
    return {"shift_norm": float(mean.norm()), "scale": scale}
