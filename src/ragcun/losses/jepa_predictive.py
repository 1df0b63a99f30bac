"""JEPAPredictiveLoss: predict the document's embedding from the query's (a JEPA objective)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from ragcun.io.atomic import atomic_path, write_json_atomic
from ragcun.losses._embed import embed_features
from ragcun.losses.sigreg_loss import LEJEPA_CITATION

PREDICTOR_DIR = "jepa_predictor"


class JEPAPredictor(nn.Module):
    """The predictor MLP: Linear(d, h) → GELU → Linear(h, d). Saved as safetensors + JSON."""

    def __init__(self, dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.hidden_dim = hidden_dim or 2 * dim
        self.net = nn.Sequential(nn.Linear(dim, self.hidden_dim), nn.GELU(), nn.Linear(self.hidden_dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``path``, each atomically."""
        Path(path).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(path) / "config.json", {"dim": self.dim, "hidden_dim": self.hidden_dim})
        with atomic_path(Path(path) / "model.safetensors") as tmp:
            save_model(self, str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike) -> JEPAPredictor:
        """Load a predictor written by :meth:`save`."""
        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"no JEPA predictor at {path}: {config_file} is missing")
        predictor = cls(**json.loads(config_file.read_text()))
        load_model(predictor, str(Path(path) / "model.safetensors"))
        return predictor


def _embedding_dimension(model: nn.Module) -> int:
    """The output dimension of sentence-transformers ``model``; ``ValueError`` if it cannot tell."""
    get_dim = getattr(model, "get_embedding_dimension", None)
    dim = get_dim() if callable(get_dim) else None
    if not isinstance(dim, int):
        raise ValueError("JEPAPredictiveLoss needs a sentence-transformers model whose embedding dimension is known")
    return dim


class JEPAPredictiveLoss(nn.Module):
    """Predictive (JEPA) loss for (context, target) columns such as (query, document)::

        L = ‖P(q) − sg(d)‖² / D        (+ ‖P(d) − sg(q)‖² / D if ``symmetric``)

    P is a small MLP predictor trained with the encoder; sg is stop-gradient, so the target
    embedding is not pulled toward the prediction. Alone it can collapse; with
    :class:`SIGRegLoss` it cannot (LeJEPA). The predictor is attached to the model so that
    ``model.save(dir)`` also writes it to ``dir/jepa_predictor`` (see :class:`JEPAPredictor`).

    Args:
        model: the SentenceTransformer being trained.
        hidden_dim: the predictor's hidden width (default 2 × the embedding dimension).
        symmetric: also predict the context from the target with the same predictor.
        predictor: an existing predictor to keep training (e.g. ``JEPAPredictor.load(...)``).

    References:
        - Balestriero & LeCun, "LeJEPA" (arXiv:2511.08544).
        - Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive
          Architecture" (I-JEPA, CVPR 2023).

    Requirements:
        1. (context, target) pairs; a model whose embedding dimension is known.
        2. An isotropy loss beside it (:class:`SIGRegLoss`), or the embeddings collapse.

    Inputs:
        +-----------------------------------------------+--------+
        | Texts                                         | Labels |
        +===============================================+========+
        | (context, target) pairs, e.g. (query, doc)    | none   |
        +-----------------------------------------------+--------+
        | (context, target, ...): extra columns unused  | none   |
        +-----------------------------------------------+--------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer

            from ragcun import GaussianEncoder
            from ragcun.losses import GaussianRAGLoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "anchor": ["What causes tides?", "Who wrote Hamlet?"],
                "positive": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            # JEPAPredictiveLoss beside SIGRegLoss, as ragcun-train's "jepa" objective builds them
            loss = GaussianRAGLoss(model, contrastive_weight=0.0, isotropy_weight=1.5, predictive_weight=1.2)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: nn.Module, hidden_dim: int | None = None, symmetric: bool = False, predictor: JEPAPredictor | None = None) -> None:
        super().__init__()
        self.model = model
        self.symmetric = symmetric
        self.predictor = predictor or JEPAPredictor(_embedding_dimension(model), hidden_dim)
        attach = getattr(model, "attach_companion", None)  # a GaussianEncoder saves the predictor with itself
        if callable(attach):
            attach(PREDICTOR_DIR, self.predictor)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss on already-computed (context, target) columns."""
        if len(embeddings) < 2:
            raise ValueError("JEPAPredictiveLoss needs (context, target) columns")
        context, target = embeddings[0], embeddings[1]
        loss = F.mse_loss(self.predictor(context), target.detach())
        if self.symmetric:
            loss = loss + F.mse_loss(self.predictor(target), context.detach())
        return loss

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed each column with the model and return the loss."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"hidden_dim": self.predictor.hidden_dim, "symmetric": self.symmetric}

    @property
    def citation(self) -> str:
        return LEJEPA_CITATION
