"""EuclideanMarginMSELoss: MarginMSE distillation of a teacher's score margins, the student scoring by L2 distance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ragcun.losses._embed import embed_features

MARGIN_MSE_CITATION = """
@inproceedings{wang2022gpl,
    title={GPL: Generative Pseudo Labeling for Unsupervised Domain Adaptation of Dense Retrieval},
    author={Kexin Wang and Nandan Thakur and Nils Reimers and Iryna Gurevych},
    booktitle={Proceedings of NAACL 2022},
    year={2022},
    url={https://arxiv.org/abs/2112.07577}
}
@misc{hofstaetter2020margin,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofst{\\"a}tter and Sophia Althammer and Michael Schr{\\"o}der and Mete Sertkan and Allan Hanbury},
    year={2020},
    eprint={2010.02666},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""


class EuclideanMarginMSELoss(nn.Module):
    """Learns a teacher's score margins between a positive and hard negatives (MarginMSE)::

        s(q, d) = −c · ‖q − d‖²
        L = 1/(B·n) Σ_i Σ_k ( [s(q_i, p_i) − s(q_i, n_ik)] − m_ik )²

    where ``m_ik`` (the labels) is the teacher's score of the positive minus its score of the
    k-th negative. It is sentence-transformers' ``MarginMSELoss`` with the negative squared
    Euclidean distance as the student's score, so that the student learns the ranking it is served
    with (ragcun ranks by L2). ``scale=None`` uses c = 1/(2·D): for N(0, I) vectors ‖q − d‖² is
    about 2D, so the student's scores live on the range of a cosine (on unit vectors, with c = 1/2,
    s = cos − 1 exactly) and the teacher's margins should too (ragcun's hybrid teacher's fused
    scores lie in [0, 1]).

    Args:
        model: the SentenceTransformer being trained.
        scale: c, or ``None`` for 1 / (2 × the embedding dimension).

    References:
        - Wang et al., "GPL: Generative Pseudo Labeling for Unsupervised Domain Adaptation of Dense
          Retrieval" (NAACL 2022, arXiv:2112.07577): MarginMSE on pseudo-queries, teacher-mined negatives.
        - Hofstätter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture
          Knowledge Distillation" (arXiv:2010.02666): the MarginMSE loss.

    Requirements:
        1. (query, positive, negative_1, ..., negative_n) columns, n >= 1.
        2. Labels: the teacher's margins, shape (B,) for one negative or (B, n).

    Inputs:
        +----------------------------------------------------+------------------------------------------+
        | Texts                                              | Labels                                   |
        +====================================================+==========================================+
        | (query, positive, negative) triplets               | teacher(q, p) − teacher(q, n), shape (B,) |
        +----------------------------------------------------+------------------------------------------+
        | (query, positive, negative_1, ..., negative_n)     | teacher margins, shape (B, n)            |
        +----------------------------------------------------+------------------------------------------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer

            from ragcun import GaussianEncoder
            from ragcun.losses import EuclideanMarginMSELoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "query": ["What causes tides?", "Who wrote Hamlet?"],
                "positive": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
                "negative": ["The Moon has no atmosphere.", "Macbeth is set in Scotland."],
                "label": [0.4, 0.3],  # teacher score of the positive minus that of the negative
            })
            loss = EuclideanMarginMSELoss(model)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: nn.Module, scale: float | None = None) -> None:
        super().__init__()
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0
                                  or scale == float("inf")):
            raise ValueError(f"EuclideanMarginMSELoss: scale must be a finite number > 0 or None, got {scale!r}")
        self.model = model
        self.scale = scale

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss on already-computed columns: queries, positives, then one or more negatives; ``labels`` the teacher's margins."""
        if len(embeddings) < 3:
            raise ValueError(f"EuclideanMarginMSELoss needs (query, positive, negative[, …]) columns, got {len(embeddings)}")
        if labels is None:
            raise ValueError("EuclideanMarginMSELoss needs labels: the teacher's margins (positive score − negative score)")
        q, p, negatives = embeddings[0], embeddings[1], torch.stack(embeddings[2:], dim=1)  # (B, D), (B, D), (B, n, D)
        n = negatives.size(1)
        margins = torch.as_tensor(labels, dtype=q.dtype, device=q.device)
        given = tuple(margins.shape)
        if margins.dim() == 1 and n == 1:
            margins = margins[:, None]
        if margins.shape != (q.size(0), n):
            raise ValueError(f"EuclideanMarginMSELoss: labels of shape {given} for {q.size(0)} queries "
                             f"and {n} negative column(s); expected ({q.size(0)},{' ' + str(n) if n > 1 else ''})")
        if not torch.isfinite(margins).all():
            raise ValueError("EuclideanMarginMSELoss: labels contain NaN or infinite margins")
        c = self.scale if self.scale is not None else 1.0 / (2 * q.size(-1))
        pos = (q - p).square().sum(-1, keepdim=True)   # (B, 1)
        neg = (q[:, None] - negatives).square().sum(-1)  # (B, n)
        student = c * (neg - pos)                        # s(q, p) − s(q, n)
        return F.mse_loss(student, margins)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}

    @property
    def citation(self) -> str:
        return MARGIN_MSE_CITATION
