"""Full fine-tuning through sentence-transformers' ``SentenceTransformerTrainer`` (what ``model.fit`` wraps):
:func:`train_full`, the loop, and :func:`run_full`, a ``train(...)`` run's full fine-tuning step around it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.evaluation import SequentialEvaluator
from sentence_transformers.sentence_transformer.training_args import BatchSamplers
from transformers import TrainerCallback

from ragcun import GaussianEncoder
from ragcun.losses import GaussianRAGLoss, JEPAPredictor
from ragcun.losses.jepa_predictive import PREDICTOR_DIR
from ragcun.model.encoding import encode_texts
from ragcun.stats import distributed
from ragcun_eval.beir import BeirDataset
from ragcun_train.data import TrainingSet
from ragcun_train.evaluation import IsotropyEvaluator, l2_retrieval_evaluator, measure
from ragcun_train.frozen import NonFiniteLossError
from ragcun_train.recentre import recentre_head
from ragcun_train.state import Cached, Outcome, Run, Start


def freeze_bottom_layers(model: GaussianEncoder, n: int) -> None:
    """Keep the token embeddings and the first ``n`` transformer layers fixed (``n`` = 0 freezes nothing)."""
    if n <= 0:
        return
    backbone = model[0].auto_model
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(f"--freeze-layers: cannot find the transformer layers of {type(backbone).__name__} (expected .encoder.layer)")
    if n > len(layers):
        raise ValueError(f"--freeze-layers {n}: the model has only {len(layers)} layers")
    for module in [backbone.embeddings, *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)


class _HistoryCallback(TrainerCallback):
    """Keeps each step's logged loss components and each evaluation; a NaN or infinite loss stops the run before it is checkpointed."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.history: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.checkpoint_dir = checkpoint_dir

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and any(k.startswith("eval_") for k in logs):
            self.evaluations.append({"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})
        if not logs or "loss" not in logs:
            return
        entry = {"step": state.global_step, "epoch": state.epoch, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        self.history.append(entry)
        if not math.isfinite(float(logs["loss"])):
            raise NonFiniteLossError.at_step(state.global_step, logs["loss"], self.checkpoint_dir, frozen=False)


def train_full(
    model: GaussianEncoder,
    loss: GaussianRAGLoss,
    data: TrainingSet,
    ev: BeirDataset | None,
    isotropy_texts: list[str],
    *,
    checkpoint_dir: Path,
    epochs: int,
    max_steps: int | None,
    batch_size: int,
    lr: float,
    seed: int,
    freeze_layers: int,
    save_steps: int,
    eval_steps: int | None,
    resume: Path | None,
    device: str,
    show_progress: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fine-tune the whole model (minus ``freeze_layers``); return the per-step history and the evaluator results."""
    freeze_bottom_layers(model, freeze_layers)
    evaluators = [IsotropyEvaluator(isotropy_texts)] + ([l2_retrieval_evaluator(ev)] if ev is not None else [])
    evaluator = SequentialEvaluator(evaluators)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir), num_train_epochs=epochs, max_steps=max_steps or -1, per_device_train_batch_size=batch_size,
        learning_rate=lr, seed=seed, data_seed=seed, logging_steps=1, logging_nan_inf_filter=False,
        save_strategy="steps", save_steps=save_steps, save_total_limit=2, report_to=[], use_cpu=device == "cpu",
        disable_tqdm=not show_progress, eval_strategy="steps" if eval_steps else "no", eval_steps=eval_steps,
        batch_sampler=BatchSamplers.NO_DUPLICATES, dataloader_drop_last=True, ddp_backend="gloo" if device == "cpu" and distributed.world_size() > 1 else None,
    )
    callback = _HistoryCallback(checkpoint_dir)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(data.columns()), loss=loss,
                                         evaluator=evaluator if eval_steps else None, callbacks=[callback])
    if resume is not None and "predictive" in loss.components and (resume / PREDICTOR_DIR).is_dir():
        loss.components["predictive"].predictor.load_state_dict(JEPAPredictor.load(resume / PREDICTOR_DIR).state_dict())
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return callback.history, callback.evaluations


def encoded_for_measure(model: GaussianEncoder, isotropy_texts: list[str],
                        ev: BeirDataset | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The model's own encodings that :func:`measure_encoded` measures: the isotropy sample, and with ``ev`` its
    queries and documents (``None`` without).

    Texts are encoded by role (:func:`ragcun.model.encoding.encode_texts`), as serving and the cache encode them:
    eval queries as ``"query"``, documents and the isotropy sample as ``"document"``.
    """
    def encode(texts: list[str], role: str = "document") -> np.ndarray:
        return encode_texts(model, texts, role, batch_size=64)

    if ev is None:
        return encode(isotropy_texts), None, None
    return encode(isotropy_texts), encode(list(ev.queries.values()), "query"), encode(ev.doc_texts)


def measure_encoded(model: GaussianEncoder, isotropy_texts: list[str], ev: BeirDataset | None) -> dict[str, Any]:
    """Isotropy and (with ``ev``) L2 retrieval metrics of the model's own encodings (no cache: the base has changed)."""
    return measure(*encoded_for_measure(model, isotropy_texts, ev), ev)


def run_full(run: Run, cached: Cached, start: Start, loss: GaussianRAGLoss, train_set: TrainingSet) -> Outcome:
    """Fine-tune the whole model on ``train_set`` with sentence-transformers' trainer; re-centre; measure its own
    encodings on rank 0."""
    cfg, model = run.cfg, run.model
    history, evaluations = train_full(
        model, loss, train_set, run.ev, cached.isotropy_texts, checkpoint_dir=run.checkpoint_dir, epochs=run.epochs,
        max_steps=cfg.max_steps, batch_size=cfg.batch_size, lr=run.lr, seed=cfg.seed, freeze_layers=cfg.freeze_layers,
        save_steps=cfg.save_steps, eval_steps=cfg.eval_steps, resume=run.resume, device=str(cfg.device),
        show_progress=cfg.show_progress,
    )
    recentred = None
    if cfg.recentre:
        fit_texts = [train_set.corpus[i] for i in start.fit_ids[: cfg.isotropy_sample].tolist()]
        recentred = recentre_head(model, model.encode(fit_texts, batch_size=64, convert_to_numpy=True))
    after = measure_encoded(model, cached.isotropy_texts, run.ev) if run.rank == 0 else {}
    held, held_outputs = run.data.held, None
    if held is not None and run.rank == 0:
        held_outputs = (model.encode_query(held.queries, batch_size=64, convert_to_numpy=True),
                        model.encode_document(train_set.corpus, batch_size=64, convert_to_numpy=True,
                                              show_progress_bar=cfg.show_progress))
    return Outcome(train_set=train_set, history=history, evaluations=evaluations, recentred=recentred, after=after,
                   held_outputs=held_outputs)
