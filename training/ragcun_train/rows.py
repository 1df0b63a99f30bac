"""What an objective trains on: the texts loaded before anything is embedded, and the rows built from them.

Every objective's data answers :class:`TrainingData`: labelled pairs, triplets and BEIR qrels
(:class:`LabelledData`) are trained on as loaded, less the queries held back to fit the relevance
calibrator; ``--objective distil`` (:mod:`ragcun_train.distil`) builds its rows from a corpus with the
model's embeddings; ``--objective similarity`` fits the whole documents and has no rows (:func:`load_whole_documents`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ragcun_train.calibration import HeldOut, hold_out
from ragcun_train.config import TrainConfig
from ragcun_train.data import TrainingSet, document_texts, load_documents, load_training_set

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


def load_whole_documents(data_path: Path, cfg: TrainConfig) -> LabelledData:
    """The documents of the corpus at ``data_path`` whole (title and body joined, as a store indexes them) and no rows:
    what a closed-form objective fits; ``ValueError`` when it has none."""
    titles, bodies, skipped = load_documents(data_path)
    if len(titles) < 2:
        raise ValueError(f"{data_path}: {len(titles) or 'no'} document{'' if len(titles) == 1 else 's'} to fit on, "
                         f"at least 2 needed (skipped: {dict(skipped) or 'none'})")
    return LabelledData(TrainingSet("corpus", str(data_path), [], [], None, document_texts(titles, bodies), [], skipped))
