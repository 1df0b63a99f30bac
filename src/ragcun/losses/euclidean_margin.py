"""EuclideanMarginLoss: a hinge on the hardest in-batch negative (the original ragcun prototype's margin loss)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ragcun.losses._embed import embed_features
from ragcun.losses.euclidean_infonce import squared_distances

TRIPLET_CITATION = """
@misc{hermans2017defense,
    title={In Defense of the Triplet Loss for Person Re-Identification},
    author={Alexander Hermans and Lucas Beyer and Bastian Leibe},
    year={2017},
    eprint={1703.07737},
    archivePrefix={arXiv},
    primaryClass={cs.CV}
}
"""


class EuclideanMarginLoss(nn.Module):
    """Hinge between the positive's distance and the hardest negative's::

        L = 1/B Σ_i max(0, ‖q_i − p_i‖ − min_{j≠i} ‖q_i − d_j‖ + margin)

    d_j runs over the other anchors' positives and every hard-negative column (batch-hard mining,
    Hermans et al., arXiv:1703.07737). Distances are Euclidean, not squared.

    Args:
        model: the SentenceTransformer being trained.
        margin: the required gap, in distance units.
    """

    def __init__(self, model: nn.Module, margin: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.margin = margin

    def compute(self, embeddings: list[Tensor]) -> Tensor:
        """The loss on already-computed columns: anchors, positives, then any negatives."""
        if len(embeddings) < 2:
            raise ValueError("EuclideanMarginLoss needs (anchor, positive[, negative …]) columns")
        anchors, docs = embeddings[0], torch.cat(embeddings[1:], dim=0)
        dist = squared_distances(anchors, docs).add(1e-12).sqrt()
        b = anchors.size(0)
        idx = torch.arange(b, device=anchors.device)
        positive = dist[idx, idx]
        if dist.size(1) == 1:
            raise ValueError("EuclideanMarginLoss needs a batch of at least 2 pairs or a negative column")
        hardest = dist.clone()
        hardest[idx, idx] = float("inf")
        return torch.relu(positive - hardest.min(dim=1).values + self.margin).mean()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        return self.compute(embed_features(self.model, sentence_features))

    def get_config_dict(self) -> dict[str, Any]:
        return {"margin": self.margin}

    @property
    def citation(self) -> str:
        return TRIPLET_CITATION
