"""What an objective trains on: the texts loaded before anything is embedded, and the rows built from them.

Every objective's data answers :class:`TrainingData`: labelled pairs, triplets and BEIR qrels
(:class:`LabelledData`) are trained on as loaded, less the queries held back to fit the relevance
calibrator; ``--objective distil`` (:mod:`ragcun_train.distil`) builds its rows from a corpus with the
model's embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ragcun_train.calibration import HeldOut, hold_out
from ragcun_train.config import TrainConfig
from ragcun_train.data import TrainingSet, load_training_set

Embed = Callable[[list[str], str], np.ndarray]
"""``embed(texts, role)``: the model's embeddings of ``texts`` as ``role`` (``"query"`` or ``"document"``)."""


class TrainingData(Protocol):
    """An objective's data: ``loaded`` (every text to cache before training), the queries ``held`` back from it to
    calibrate (or ``None``), and :meth:`rows`."""

    loaded: TrainingSet
    held: HeldOut | None

    def rows(self, embed: Embed) -> TrainingSet:
        """The rows to train on, given the model's embeddings before training."""
        ...


@dataclass(frozen=True)
class LabelledData:
    """Labelled data, trained on as loaded (``held``: the queries held back from it to fit the calibrator)."""

    loaded: TrainingSet
    held: HeldOut | None = None

    def rows(self, embed: Embed) -> TrainingSet:
        """The loaded rows (labelled data needs no embeddings to build them)."""
        return self.loaded


def load_labelled(data_path: Path, cfg: TrainConfig) -> LabelledData:
    """Pairs, triplets or BEIR qrels from ``data_path`` (``cfg.format``); with ``cfg.calibrate``, queries held back."""
    train_set = load_training_set(data_path, cfg.format)
    return LabelledData(*hold_out(train_set, cfg.seed)) if cfg.calibrate else LabelledData(train_set)
