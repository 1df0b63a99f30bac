"""What the steps of a ``train(...)`` run hand each other: the resolved run, its cached base embeddings, the start
(initialised head, metrics before training) and the outcome of training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ragcun import GaussianEncoder
from ragcun.model.cache import EmbeddingCache
from ragcun_eval.beir import BeirDataset
from ragcun_train.config import TrainConfig
from ragcun_train.data import TrainingSet
from ragcun_train.evaluation import measure
from ragcun_train.rows import TrainingData


@dataclass(frozen=True)
class Run:
    """What resolving settles before any text is embedded: the resolved options (``cfg``, never changed afterwards),
    the objective's data, eval set, output and model."""

    cfg: TrainConfig
    lr: float
    epochs: int
    weights: dict[str, float]
    rank: int
    output: Path
    checkpoint_dir: Path
    resume: Path | None
    data: TrainingData
    ev: BeirDataset | None
    ev_name: str | None
    model: GaussianEncoder
    started: float


@dataclass
class Cached:
    """The run's base embeddings, cached by role: queries as ``"query"``, documents as ``"document"``."""

    cache: EmbeddingCache
    device: str
    isotropy_texts: list[str]
    corpus_texts: list[str]
    corpus: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.corpus = self.base(self.corpus_texts)

    def base(self, texts: list[str], role: str = "document") -> torch.Tensor:
        """Unit-length base embeddings of ``texts`` as ``role`` (the head's input, as serving encodes them) from the cache."""
        return F.normalize(torch.from_numpy(self.cache.get(texts, role)), p=2, dim=1).to(self.device)

    def outputs(self, model: GaussianEncoder, texts: list[str], role: str = "document") -> np.ndarray:
        """``model``'s outputs for ``texts`` as ``role``: its head on the cached base embeddings (no gradient)."""
        with torch.no_grad():
            return model.apply_head(self.base(texts, role)).cpu().numpy()

    def measure(self, model: GaussianEncoder, ev: BeirDataset | None) -> dict[str, Any]:
        """Isotropy and (with an eval set) L2 retrieval metrics of ``model``'s head on the cached base embeddings."""
        model.eval()
        emb = self.outputs(model, self.isotropy_texts)
        if ev is None:
            return measure(emb, None, None, None)
        return measure(emb, self.outputs(model, list(ev.queries.values()), "query"), self.outputs(model, ev.doc_texts), ev)


@dataclass
class Start:
    """What initialising leaves: the corpus rows the head was fitted on, and the metrics training starts from."""

    fit_ids: torch.Tensor
    base_metrics: dict[str, Any] | None
    before: dict[str, Any]


@dataclass
class Outcome:
    """What training leaves: the rows it trained on, the step history, the evaluator results, the re-centring (or the
    closed-form similarity ``transform`` that replaced training), the final metrics and the trained model's outputs
    for the held-back queries and the corpus (to fit its calibrator and hybrid weight)."""

    train_set: TrainingSet
    history: list[dict[str, Any]]
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    recentred: dict[str, Any] | None = None
    transform: dict[str, Any] | None = None
    after: dict[str, Any] = field(default_factory=dict)
    held_outputs: tuple[np.ndarray, np.ndarray] | None = None
