"""SIGRegLoss: LeJEPA's Sketched Isotropic Gaussian Regularisation as a sentence-transformers loss."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ragcun.losses._embed import embed_features
from ragcun.stats.sigreg import N_POINTS, T_MAX, slice_projections, sliced_epps_pulley

LEJEPA_CITATION = """
@misc{balestriero2025lejepa,
    title={LeJEPA: Provable and Scalable Self-Supervised Learning Without the Heuristics},
    author={Randall Balestriero and Yann LeCun},
    year={2025},
    eprint={2511.08544},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""


class SIGRegLoss(nn.Module):
    """Pushes the embeddings of a batch toward N(0, I).

    All embeddings of the batch (every column stacked) are projected on ``num_slices`` random unit
    directions, and each 1-D projection is tested against N(0, 1) with the Epps–Pulley statistic::

        SIGReg(X) = 1/K Σ_k  N ∫ |φ̂_{X a_k}(t) − e^{−t²/2}|² e^{−t²/2} dt

    The directions are redrawn at every call (LeJEPA's slicer: a generator seeded with the step),
    identically on every rank; under ``torch.distributed`` the statistic covers the global batch.

    Args:
        model: the SentenceTransformer being trained.
        num_slices: number of random 1-D projections.
        t_max: upper end of the integration on [0, t_max].
        n_points: number of (odd) trapezoid nodes.

    References:
        - Balestriero & LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the
          Heuristics" (arXiv:2511.08544).
        - Epps & Pulley, "A test for normality based on the empirical characteristic function"
          (Biometrika, 1983).

    Requirements:
        1. Batches large enough for a distribution to show (tens of embeddings or more); usually
           combined with a retrieval loss (see :class:`GaussianRAGLoss`).

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
            from ragcun.losses import SIGRegLoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "text": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            loss = SIGRegLoss(model, num_slices=256)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    step: Tensor  # a registered buffer: the call count that seeds the slices

    def __init__(self, model: nn.Module, num_slices: int = 256, t_max: float = T_MAX, n_points: int = N_POINTS) -> None:
        super().__init__()
        self.model = model
        self.num_slices = num_slices
        self.t_max = t_max
        self.n_points = n_points
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The statistic on already-computed embeddings (each column (B, D)); advances the slices."""
        x = torch.cat(embeddings, dim=0)
        projections = slice_projections(x.size(-1), self.num_slices, int(self.step), device=x.device)
        self.step += 1
        return sliced_epps_pulley(x, projections, self.t_max, self.n_points).mean()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"num_slices": self.num_slices, "t_max": self.t_max, "n_points": self.n_points}

    @property
    def citation(self) -> str:
        return LEJEPA_CITATION
