"""``train(...)``: the whole ``ragcun-train`` run as one Python call (the CLI is a thin wrapper)."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragcun import GaussianEncoder, distributed
from ragcun.io.atomic import write_json_atomic
from ragcun.losses.jepa_predictive import PREDICTOR_DIR
from ragcun.model.cache import EmbeddingCache
from ragcun.model.encoder import resolve_model_path
from ragcun.scoring.calibrator import FILE as CALIBRATOR_FILE
from ragcun.scoring.fusion_settings import FILE as FUSION_FILE
from ragcun.store.calibrate import add_hybrid_terms
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_train.calibration import held_out_calibrator
from ragcun_train.checkpoint import latest_checkpoint
from ragcun_train.config import CHECKPOINT_DIR, DEMO_DIR, TrainConfig
from ragcun_train.distil import load_distil
from ragcun_train.evaluation import retrieval_metrics
from ragcun_train.frozen import run_frozen
from ragcun_train.fusion_fit import held_out_fusion, held_out_store
from ragcun_train.model_card import write_model_card
from ragcun_train.objectives import CLOSED_FORM_OBJECTIVES, ENCODER_OBJECTIVES, TRAINED_LAYERS_ON_CPU, build_loss
from ragcun_train.report import (
    ISOTROPY_PLOT,
    LOSS_PLOT,
    REPORT_FILE,
    covariance_spectrum,
    plot_isotropy,
    plot_losses,
    summary_lines,
)
from ragcun_train.rows import TrainingData, load_labelled, load_whole_documents
from ragcun_train.similarity import run_similarity
from ragcun_train.state import Cached, Outcome, Run, Start

log = logging.getLogger(__name__)

FIT_SAMPLE = 20_000
DATA_LOADERS: dict[str, Callable[[Path, TrainConfig], TrainingData]] = {"distil": load_distil, "similarity": load_whole_documents,
                                                                              "similarity-centred": load_whole_documents}
"""Objectives that build their own rows (or, closed-form, fit whole documents), with the loader of their data; every
other objective trains on labelled data as loaded (:func:`ragcun_train.rows.load_labelled`)."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its folder and the report written beside it."""

    model: GaussianEncoder
    output: Path
    report: dict[str, Any] = field(default_factory=dict)


def _seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_eval(cfg: TrainConfig, data_path: Path) -> tuple[BeirDataset | None, str | None]:
    """The BEIR split to report before/after on: ``--eval-data``, else the training folder's dev, else its test split."""
    folder = Path(cfg.eval_data) if cfg.eval_data else (data_path if (data_path / "corpus.jsonl").is_file() else None)
    if folder is None:
        return None, None
    splits = [cfg.eval_split] if cfg.eval_split else ["dev", "test"]
    for split in splits:
        if (folder / "qrels" / f"{split}.tsv").is_file():
            return load_beir(folder, split=split), f"{folder}:{split}"
    if cfg.eval_data or cfg.eval_split:
        raise FileNotFoundError(f"{folder}: no qrels/{splits[0]}.tsv to evaluate on")
    return None, None


def _resume_path(cfg: TrainConfig, checkpoint_dir: Path) -> Path | None:
    """The checkpoint to resume from: ``--resume CHECKPOINT`` as given, else the newest of this mode in ``checkpoint_dir``."""
    if not cfg.resume:
        return None
    if isinstance(cfg.resume, str) and cfg.resume not in ("true", "latest"):
        return Path(cfg.resume)
    found = latest_checkpoint(checkpoint_dir, frozen=bool(cfg.freeze_base))
    if found is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {checkpoint_dir}")
    return found


def _device(name: str | None) -> str:
    """The torch device to train on: ``name`` checked, else cuda if available, else cpu."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: CUDA is not available here")
    return name


def _sample(texts: list[str], k: int, seed: int) -> list[str]:
    """Up to ``k`` distinct ``texts``, drawn with ``seed``."""
    unique = list(dict.fromkeys(texts))
    return unique if len(unique) <= k else random.Random(seed).sample(unique, k)


def _model_entries(folder: Path) -> set[str]:
    """The module folders a saved model in ``folder`` lists in its ``modules.json`` (plain names only), its JEPA
    predictor, its relevance calibrator and its fusion settings files."""
    try:
        listed = {m.get("path") for m in json.loads((folder / "modules.json").read_text())}
    except (OSError, ValueError, TypeError, AttributeError):  # no model there, or not one this can read: remove nothing
        listed = set()
    return {n for n in listed if isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n} | {PREDICTOR_DIR,
                                                                                                        CALIBRATOR_FILE, FUSION_FILE}


def _save_model(model: GaussianEncoder, output: Path, report: dict[str, Any]) -> None:
    """Write the model and its card into ``output`` via a temporary sibling folder, entry by entry with ``os.replace``.

    Module folders (and calibrator and fusion files) of a model saved there before that this one does not have are removed.
    """
    output.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output, prefix=".model-"))
    try:
        model.save(str(tmp))
        write_model_card(tmp, report, model.ragcun_config)
        stale = _model_entries(output) - {entry.name for entry in tmp.iterdir()}
        for entry in tmp.iterdir():
            target = output / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        for name in stale:
            if (output / name).is_file():
                (output / name).unlink()
            else:
                shutil.rmtree(output / name, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resolve_config(data: str | os.PathLike | None, options: dict[str, Any]) -> TrainConfig:
    """The checked options with the run's choices filled in (objective, device, frozen base, demo eval set): a new
    config, never changed afterwards except by :func:`_resolve` filling ``freeze_layers`` once the model is known."""
    given = TrainConfig(data=None if data is None else str(data), **options)
    given.check()
    objective = given.resolved_objective()
    resolve_model_path(given.model)  # a missing local model fails here, before any data or model loads
    device = _device(given.device)
    freeze = given.freeze_base if given.freeze_base is not None else device == "cpu" and objective not in ENCODER_OBJECTIVES
    demo_eval = {"eval_data": str(DEMO_DIR), "eval_split": given.eval_split or "test"} \
        if given.data is None and given.eval_data is None else {}
    return replace(given, objective=objective, device=device, freeze_base=freeze, **demo_eval)


def _default_freeze_layers(cfg: TrainConfig, model: GaussianEncoder) -> int:
    """``--freeze-layers`` unless given: on CPU, an encoder objective trains the top layers only (minutes, not hours)."""
    if cfg.freeze_layers is not None:
        return cfg.freeze_layers
    layers = len(getattr(getattr(model[0].auto_model, "encoder", None), "layer", []))
    return max(0, layers - TRAINED_LAYERS_ON_CPU) if cfg.objective in ENCODER_OBJECTIVES and cfg.device == "cpu" else 0


def _resolve(data: str | os.PathLike | None, options: dict[str, Any]) -> Run:
    """Check the options, pick device, mode and schedule, join torchrun's process group, seed, and load data, eval set and model.

    Bad options, a missing local model and an ``output`` holding a previous run (without
    ``overwrite`` or ``resume``) raise before anything loads. ``overwrite`` removes the previous
    run's checkpoints.
    """
    started = time.time()
    cfg = _resolve_config(data, options)
    lr = cfg.lr if cfg.lr is not None else (1e-3 if cfg.freeze_base else 2e-5)
    epochs = cfg.epochs if cfg.epochs is not None else (20 if cfg.freeze_base else 1)
    distributed.init_from_env(str(cfg.device))
    _seed_everything(cfg.seed)
    rank = distributed.rank()
    data_path = Path(cfg.data) if cfg.data else DEMO_DIR
    output = Path(cfg.output)
    checkpoint_dir = output / CHECKPOINT_DIR
    resume = _resume_path(cfg, checkpoint_dir)
    if cfg.overwrite and rank == 0:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the previous run's: they must not mix with this run's
    weights = cfg.weights()
    training_data = DATA_LOADERS.get(str(cfg.objective), load_labelled)(data_path, cfg)
    ev, ev_name = _resolve_eval(cfg, data_path)
    model = GaussianEncoder(cfg.model, output_dim=cfg.output_dim, head=cfg.head, init=cfg.init, device=cfg.device)
    cfg = replace(cfg, freeze_layers=_default_freeze_layers(cfg, model))
    return Run(cfg=cfg, lr=lr, epochs=epochs, weights=weights, rank=rank, output=output, checkpoint_dir=checkpoint_dir,
               resume=resume, data=training_data, ev=ev, ev_name=ev_name, model=model, started=started)


def _cache(run: Run) -> Cached:
    """Embed every text the run needs with the base model once (rank 0 writes the cache, the other ranks read it).

    Training anchors and eval queries are cached as ``"query"``; the corpus, hard negatives, the
    isotropy sample and the eval documents as ``"document"``.
    """
    cfg, train_set, ev = run.cfg, run.data.loaded, run.ev
    cache = EmbeddingCache(run.model, cfg.cache_dir, show_progress=cfg.show_progress)
    iso_texts = _sample(ev.doc_texts if ev is not None else train_set.corpus, cfg.isotropy_sample, cfg.seed)
    held = run.data.held.queries if run.data.held is not None else []
    wanted = {"query": [*train_set.anchors, *held, *(ev.queries.values() if ev is not None else [])],
              "document": [*train_set.corpus, *(train_set.negatives or []), *iso_texts,
                           *(ev.doc_texts if ev is not None else [])]}
    if run.rank == 0:
        for role, texts in wanted.items():
            cache.get(texts, role)
    distributed.barrier()
    if run.rank != 0:
        cache.store.refresh()  # pick up what rank 0 wrote
    return Cached(cache=cache, device=str(cfg.device), isotropy_texts=iso_texts, corpus_texts=train_set.corpus)


def _init(run: Run, cached: Cached) -> Start:
    """Fit the head's initialisation (identity or whitening) on up to ``FIT_SAMPLE`` corpus documents; measure the start.

    A closed-form objective keeps the model's head as loaded (its transform must not change the ranking the user had). On rank 0, measures the base model's cosine retrieval (with an eval set) and the
    initialised model.
    """
    model, ev = run.model, run.ev
    fit_ids = torch.randperm(len(cached.corpus), generator=torch.Generator().manual_seed(run.cfg.seed))[:FIT_SAMPLE]
    fit_on = cached.corpus[fit_ids].cpu().numpy()
    refit = run.cfg.objective not in CLOSED_FORM_OBJECTIVES
    if refit and model.ragcun_config["init"] == "identity":
        model.fit_identity(fit_on)
    elif refit and model.ragcun_config["init"] == "whitening":
        model.fit_whitening(fit_on)
    base_metrics = None
    if ev is not None and run.rank == 0:
        metrics = retrieval_metrics(cached.base(list(ev.queries.values()), "query").cpu(), cached.base(ev.doc_texts).cpu(), ev)
        base_metrics = {"ndcg@10": metrics["ndcg@10"], "metrics": metrics}
    before = cached.measure(model, ev) if run.rank == 0 else {}
    return Start(fit_ids=fit_ids, base_metrics=base_metrics, before=before)


def _run_training(run: Run, cached: Cached, start: Start) -> Outcome:
    """Build the objective's rows (from the model's outputs before training) and loss, and train: the head alone on
    cached embeddings (frozen base, :func:`ragcun_train.frozen.run_frozen`), or the whole model
    (:func:`ragcun_train.full.run_full`); a closed-form objective fits instead (:func:`ragcun_train.similarity.run_similarity`)."""
    if run.cfg.objective in CLOSED_FORM_OBJECTIVES:
        return run_similarity(run, cached, start)
    train_set = run.data.rows(lambda texts, role: cached.outputs(run.model, texts, role))
    loss = build_loss(run.model, run.weights, run.cfg.temperature, run.cfg.num_slices)
    if run.cfg.freeze_base:
        return run_frozen(run, cached, start, loss, train_set)
    from ragcun_train.full import run_full  # the trainer's imports load only for full fine-tuning

    return run_full(run, cached, start, loss, train_set)


def _report(run: Run, cached: Cached, start: Start, outcome: Outcome) -> dict[str, Any]:
    """Assemble the report, then write the model and its card, ``training_report.json`` and the plots; log the summary."""
    cfg, train_set, held, ev = run.cfg, outcome.train_set, run.data.held, run.ev
    before, after = start.before, outcome.after
    spectra = {"before": covariance_spectrum(before.pop("_emb")), "after": covariance_spectrum(after.pop("_emb"))}
    # A closed-form transform keeps (rescaled) what the model carried; training replaces it by what the held-back
    # queries fit, or drops it.
    kept = outcome.transform is not None
    calibrator = run.model.relevance_calibrator if kept else None
    fusion = run.model.fusion_settings if kept else None
    if held is not None and outcome.held_outputs is not None:
        queries, corpus = outcome.held_outputs
        store = held_out_store(corpus, train_set.corpus)
        fusion = held_out_fusion(store, queries, held, train_set.source)
        calibrator = held_out_calibrator(queries, corpus, held, train_set.source)
        if calibrator is not None:
            calibrator = add_hybrid_terms(calibrator, store, queries, held.queries,
                                          [{str(i) for i in rel} for rel in held.relevant], fusion)
    run.model.relevance_calibrator, run.model.fusion_settings = calibrator, fusion
    report = {
        "config": asdict(cfg) | {"lr": run.lr, "epochs": run.epochs, "weights": run.weights},
        "data": {"source": train_set.source, "kind": train_set.kind, "rows": len(train_set), "corpus": len(train_set.corpus),
                 "held_back_queries": len(held.queries) if held is not None else 0,
                 "skipped": dict(train_set.skipped)},
        "calibrator": calibrator.to_dict() if calibrator is not None else None,
        "fusion": asdict(fusion) if fusion is not None else None,
        "eval": {"source": run.ev_name, "split": str(run.ev_name).rsplit(":", 1)[1], "queries": len(ev.queries),
                 "docs": len(ev.doc_ids)} if ev else None,
        "cache": {"dir": str(cached.cache.dir), "hits": cached.cache.hits, "misses": cached.cache.misses},
        "base": start.base_metrics,
        "before": before,
        "after": after,
        "recentred": outcome.recentred,
        "transform": outcome.transform,
        "steps": outcome.history,
        "evaluations": outcome.evaluations,
        "seconds": round(time.time() - run.started, 1),
    }
    _save_model(run.model, run.output, report)
    write_json_atomic(run.output / REPORT_FILE, report)
    if outcome.history:
        plot_losses(outcome.history, run.output / LOSS_PLOT)
    plot_isotropy(before["isotropy"], after["isotropy"], spectra, run.output / ISOTROPY_PLOT)
    for line in summary_lines(report):
        log.info(line)
    return report


def train(data: str | os.PathLike | None = None, **options: Any) -> TrainResult:
    """Train a Gaussian model exactly as ``ragcun-train`` does; ``options`` are :class:`TrainConfig` fields.

    With no ``data``, trains on the bundled demo (SciFact training pairs) and reports on its test
    queries. Writes the model, its card, ``training_report.json`` and the plots into ``output``.
    Bad options, a missing local model and an ``output`` holding a previous run (without
    ``overwrite`` or ``resume``) raise ``ValueError`` / ``FileNotFoundError`` before anything loads.
    """
    run = _resolve(data, options)
    cached = _cache(run)
    start = _init(run, cached)
    outcome = _run_training(run, cached, start)
    report = _report(run, cached, start, outcome) if run.rank == 0 else {}
    distributed.barrier()
    return TrainResult(model=run.model, output=run.output, report=report)
