"""EuclideanInfoNCELoss: InfoNCE whose logits are negative squared Euclidean distances."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ragcun.losses._embed import embed_features

INFONCE_CITATION = """
@misc{oord2018representation,
    title={Representation Learning with Contrastive Predictive Coding},
    author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
    year={2018},
    eprint={1807.03748},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""


def squared_distances(queries: Tensor, docs: Tensor) -> Tensor:
    """(Q, D) × (M, D) → (Q, M) squared Euclidean distances, never negative."""
    return (queries.square().sum(1, keepdim=True) - 2 * queries @ docs.T + docs.square().sum(1)).clamp_min(0)


class EuclideanInfoNCELoss(nn.Module):
    """Contrastive loss for (anchor, positive[, negative …]) columns, scored by L2 distance::

        L = −1/B Σ_i log  exp(−‖q_i − p_i‖² / τ) / Σ_j exp(−‖q_i − d_j‖² / τ)

    where d_j runs over every positive and hard negative in the batch (in-batch negatives).
    ``temperature=None`` uses τ = 0.1·D: for N(0, I) vectors ‖q − d‖² is about D times larger
    than for unit vectors, and on unit vectors τ = 0.1 equals sentence-transformers' default
    cosine scale of 20. It is sentence-transformers' ``MultipleNegativesRankingLoss`` with the
    negative squared Euclidean distance as similarity.

    Args:
        model: the SentenceTransformer being trained.
        temperature: τ, or ``None`` for 0.1 × the embedding dimension.

    References:
        - van den Oord et al., "Representation Learning with Contrastive Predictive Coding"
          (arXiv:1807.03748).

    Requirements:
        1. (anchor, positive) pairs, (anchor, positive, negative) triplets or (anchor, positive,
           negative_1, ..., negative_n) n-tuples.

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
            from ragcun.losses import EuclideanInfoNCELoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "anchor": ["What causes tides?", "Who wrote Hamlet?"],
                "positive": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            loss = EuclideanInfoNCELoss(model)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: nn.Module, temperature: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss on already-computed columns: anchors, positives, then any negatives."""
        if len(embeddings) < 2:
            raise ValueError("EuclideanInfoNCELoss needs (anchor, positive[, negative …]) columns")
        anchors, docs = embeddings[0], torch.cat(embeddings[1:], dim=0)
        tau = self.temperature or 0.1 * anchors.size(-1)
        logits = -squared_distances(anchors, docs) / tau
        targets = torch.arange(anchors.size(0), device=anchors.device)
        return F.cross_entropy(logits, targets)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    @property
    def citation(self) -> str:
        return INFONCE_CITATION
