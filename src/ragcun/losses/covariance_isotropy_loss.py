"""CovarianceIsotropyLoss: a covariance-matching regulariser (the original ragcun prototype's isotropy term)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ragcun.losses._embed import embed_features
from ragcun.stats.isotropy import covariance_isotropy


class CovarianceIsotropyLoss(nn.Module):
    """Pushes the batch covariance toward a multiple of the identity, optionally at a target scale::

        L = ‖Cov(X) − var(X)·I‖_F / D  +  std_weight · (std(X) − target_std)²

    ``Cov`` is the unbiased covariance of all embeddings of the batch, ``var``/``std`` the variance
    and standard deviation of all their entries. Only second moments: it cannot see a shifted mean
    or a non-Gaussian shape, which is what :class:`SIGRegLoss` adds.

    Args:
        model: the SentenceTransformer being trained.
        target_std: if set, also pull the overall standard deviation toward this value (1.0 for N(0, I)).
        std_weight: weight of the standard-deviation term.

    References:
        - The original ragcun prototype's isotropy term; :class:`SIGRegLoss` (LeJEPA,
          arXiv:2511.08544) is the full-distribution successor.

    Requirements:
        1. Batches with more embeddings than a handful (the covariance of a few rows is noise);
           usually combined with a retrieval loss (see :class:`GaussianRAGLoss`).

    Inputs:
        +-------------------------------------------+--------+
        | Texts                                     | Labels |
        +===========================================+========+
        | any number of columns (single sentences,  | none   |
        | pairs, triplets, ...), all stacked        |        |
        +-------------------------------------------+--------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer

            from ragcun import GaussianEncoder
            from ragcun.losses import CovarianceIsotropyLoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "text": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            loss = CovarianceIsotropyLoss(model, target_std=1.0)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: nn.Module, target_std: float | None = 1.0, std_weight: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.target_std = target_std
        self.std_weight = std_weight

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss on already-computed embeddings (each column (B, D))."""
        x = torch.cat(embeddings, dim=0)
        loss = covariance_isotropy(x)
        if self.target_std is not None:
            loss = loss + self.std_weight * (x.std() - self.target_std).square()
        return loss

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"target_std": self.target_std, "std_weight": self.std_weight}

    @property
    def citation(self) -> str | None:
        return None
