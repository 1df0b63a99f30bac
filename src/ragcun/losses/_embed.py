"""The one place a loss turns sentence features into embeddings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from torch import Tensor, nn


class ColumnLoss(Protocol):
    """What every ragcun loss offers besides ``forward``: the loss on already-embedded columns, and its config."""

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss on already-computed embeddings, one (B, D) tensor per column (sentence-transformers' hook)."""

    def get_config_dict(self) -> dict[str, Any]:
        """sentence-transformers' loss config (logged with the model card)."""


def embed_features(model: nn.Module, sentence_features: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Embed each column of a sentence-transformers batch: one (B, D) tensor per column."""
    return [model(features)["sentence_embedding"] for features in sentence_features]
