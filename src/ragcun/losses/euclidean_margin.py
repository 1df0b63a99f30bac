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

    d_j runs over the other anchors' positives and every hard-negative column (batch-hard mining).
    Distances are Euclidean, not squared.

    Args:
        model: the SentenceTransformer being trained.
        margin: the required gap, in distance units.

    References:
        - Hermans et al., "In Defense of the Triplet Loss for Person Re-Identification"
          (arXiv:1703.07737).

    Requirements:
        1. (anchor, positive) pairs with a batch of at least 2, or (anchor, positive, negative …)
           n-tuples.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative) triplets           | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer

            from ragcun import GaussianEncoder
            from ragcun.losses import EuclideanMarginLoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "anchor": ["What causes tides?", "Who wrote Hamlet?"],
                "positive": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            loss = EuclideanMarginLoss(model, margin=1.0)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: nn.Module, margin: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.margin = margin

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
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
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"margin": self.margin}

    @property
    def citation(self) -> str:
        return TRIPLET_CITATION
