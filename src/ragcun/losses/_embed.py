"""The one place a loss turns sentence features into embeddings."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


def embed_features(model: nn.Module, sentence_features: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Embed each column of a sentence-transformers batch: one (B, D) tensor per column."""
    return [model(features)["sentence_embedding"] for features in sentence_features]
