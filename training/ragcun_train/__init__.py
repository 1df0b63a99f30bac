"""ragcun-train: fine-tune a Gaussian (isotropic, L2-ranked) embedding model on pairs, BEIR qrels or a plain corpus.

``ragcun_train.train(data, **options)`` does what the ``ragcun-train`` command does. The names below
load on first use, so ``ragcun-train --help`` and argument errors never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEMO_DIR": "ragcun_train.config",
    "IsotropyEvaluator": "ragcun_train.evaluation",
    "TrainConfig": "ragcun_train.config",
    "TrainResult": "ragcun_train.api",
    "train": "ragcun_train.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``ragcun_train.train`` and the other exports, imported when first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ragcun_train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
