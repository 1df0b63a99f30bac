"""``train(...)``: the whole ``ragcun-train`` run as one Python call (the CLI is a thin wrapper)."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ragcun import GaussianEncoder, distributed
from ragcun.io.atomic import write_json_atomic
from ragcun.losses import GaussianRAGLoss
from ragcun.losses.jepa_predictive import PREDICTOR_DIR
from ragcun.model.cache import EmbeddingCache
from ragcun.model.encoder import resolve_model_path
from ragcun.scoring.calibrator import FILE as CALIBRATOR_FILE
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_train.calibration import HeldOut, fit_calibrator, hold_out
from ragcun_train.checkpoint import latest_checkpoint
from ragcun_train.config import CHECKPOINT_DIR, DEMO_DIR, TrainConfig
from ragcun_train.data import TrainingSet, load_documents, load_training_set
from ragcun_train.distil import TRAINED_LAYERS_ON_CPU, distil_set
from ragcun_train.evaluation import measure, retrieval_metrics
from ragcun_train.frozen import CachedBatchSource, train_frozen
from ragcun_train.model_card import write_model_card
from ragcun_train.objectives import ENCODER_OBJECTIVES, build_loss
from ragcun_train.recentre import recentre_head
from ragcun_train.report import (
    ISOTROPY_PLOT,
    LOSS_PLOT,
    REPORT_FILE,
    covariance_spectrum,
    plot_isotropy,
    plot_losses,
    summary_lines,
)

log = logging.getLogger(__name__)

FIT_SAMPLE = 20_000


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
    predictor and its relevance calibrator file."""
    try:
        listed = {m.get("path") for m in json.loads((folder / "modules.json").read_text())}
    except (OSError, ValueError, TypeError, AttributeError):  # no model there, or not one this can read: remove nothing
        listed = set()
    return {n for n in listed if isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n} | {PREDICTOR_DIR,
                                                                                                        CALIBRATOR_FILE}


def _save_model(model: GaussianEncoder, output: Path, report: dict[str, Any]) -> None:
    """Write the model and its card into ``output`` via a temporary sibling folder, entry by entry with ``os.replace``.

    Module folders (and a calibrator file) of a model saved there before that this one does not have are removed.
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


@dataclass
class _Run:
    """What :func:`_resolve` settles before any text is embedded: the checked options, data (and the queries held back
    from it to fit the relevance calibrator), eval set, output and model."""

    cfg: TrainConfig
    lr: float
    epochs: int
    weights: dict[str, float]
    rank: int
    output: Path
    checkpoint_dir: Path
    resume: Path | None
    train_set: TrainingSet
    held: HeldOut | None
    ev: BeirDataset | None
    ev_name: str | None
    model: GaussianEncoder
    started: float
    documents: tuple[list[str], list[str]] | None = None  # (titles, bodies) of a corpus for --objective distil


@dataclass
class _Cached:
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


@dataclass
class _Start:
    """What :func:`_init` leaves: the corpus rows the head was fitted on, and the metrics training starts from."""

    fit_ids: torch.Tensor
    base_metrics: dict[str, Any] | None
    before: dict[str, Any]


@dataclass
class _Outcome:
    """What :func:`_run_training` leaves: the step history, the evaluator results, the re-centring, the final metrics
    and the trained model's outputs for the held-back queries and the corpus (to fit its calibrator)."""

    history: list[dict[str, Any]]
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    recentred: dict[str, Any] | None = None
    after: dict[str, Any] = field(default_factory=dict)
    held_outputs: tuple[np.ndarray, np.ndarray] | None = None


def _resolve(data: str | os.PathLike | None, options: dict[str, Any]) -> _Run:
    """Check the options, pick device, mode and schedule, join torchrun's process group, seed, and load data, eval set and model.

    Bad options, a missing local model and an ``output`` holding a previous run (without
    ``overwrite`` or ``resume``) raise before anything loads. ``overwrite`` removes the previous
    run's checkpoints.
    """
    cfg = TrainConfig(data=None if data is None else str(data), **options)
    cfg.check()
    cfg.objective = cfg.resolved_objective()
    resolve_model_path(cfg.model)  # a missing local model fails here, before any data or model loads
    started = time.time()
    device = _device(cfg.device)
    encoder_objective = cfg.objective in ENCODER_OBJECTIVES
    freeze = cfg.freeze_base if cfg.freeze_base is not None else device == "cpu" and not encoder_objective
    cfg.freeze_base, cfg.device = freeze, device
    lr = cfg.lr if cfg.lr is not None else (1e-3 if freeze else 2e-5)
    epochs = cfg.epochs if cfg.epochs is not None else (20 if freeze else 1)
    distributed.init_from_env(device)
    _seed_everything(cfg.seed)
    rank = distributed.rank()
    data_path = Path(cfg.data) if cfg.data else DEMO_DIR
    if cfg.data is None and cfg.eval_data is None:
        cfg.eval_data, cfg.eval_split = str(DEMO_DIR), cfg.eval_split or "test"
    output = Path(cfg.output)
    checkpoint_dir = output / CHECKPOINT_DIR
    resume = _resume_path(cfg, checkpoint_dir)
    if cfg.overwrite and rank == 0:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the previous run's: they must not mix with this run's
    weights = cfg.weights()
    documents, held = None, None
    if encoder_objective:
        titles, bodies, skipped = load_documents(data_path)
        if not titles:
            raise ValueError(f"{data_path}: no documents to distil on (skipped: {dict(skipped) or 'none'})")
        documents = (titles, bodies)
        train_set = TrainingSet("corpus", str(data_path), [], [], None, [f"{t} {b}".strip() for t, b in zip(titles, bodies)],
                                [], skipped)
    else:
        train_set = load_training_set(data_path, cfg.format)
        if cfg.calibrate:
            train_set, held = hold_out(train_set, cfg.seed)
    ev, ev_name = _resolve_eval(cfg, data_path)
    model = GaussianEncoder(cfg.model, output_dim=cfg.output_dim, head=cfg.head, init=cfg.init, device=device)
    if cfg.freeze_layers is None:  # on CPU, an encoder objective trains the top layers only (minutes, not hours)
        layers = len(getattr(getattr(model[0].auto_model, "encoder", None), "layer", []))
        cfg.freeze_layers = max(0, layers - TRAINED_LAYERS_ON_CPU) if encoder_objective and device == "cpu" else 0
    return _Run(cfg=cfg, lr=lr, epochs=epochs, weights=weights, rank=rank, output=output, checkpoint_dir=checkpoint_dir,
                resume=resume, train_set=train_set, held=held, ev=ev, ev_name=ev_name, model=model, started=started,
                documents=documents)


def _cache(run: _Run) -> _Cached:
    """Embed every text the run needs with the base model once (rank 0 writes the cache, the other ranks read it).

    Training anchors and eval queries are cached as ``"query"``; the corpus, hard negatives, the
    isotropy sample and the eval documents as ``"document"``.
    """
    cfg, train_set, ev = run.cfg, run.train_set, run.ev
    cache = EmbeddingCache(run.model, cfg.cache_dir, show_progress=cfg.show_progress)
    iso_texts = _sample(ev.doc_texts if ev is not None else train_set.corpus, cfg.isotropy_sample, cfg.seed)
    held = run.held.queries if run.held is not None else []
    wanted = {"query": [*train_set.anchors, *held, *(ev.queries.values() if ev is not None else [])],
              "document": [*train_set.corpus, *(train_set.negatives or []), *iso_texts,
                           *(ev.doc_texts if ev is not None else [])]}
    if run.rank == 0:
        for role, texts in wanted.items():
            cache.get(texts, role)
    distributed.barrier()
    if run.rank != 0:
        cache.store.refresh()  # pick up what rank 0 wrote
    return _Cached(cache=cache, device=str(cfg.device), isotropy_texts=iso_texts, corpus_texts=train_set.corpus)


def _measure_cached(run: _Run, cached: _Cached) -> dict[str, Any]:
    """Isotropy and (with an eval set) L2 retrieval metrics of the head on the cached base embeddings."""
    model, ev = run.model, run.ev
    model.eval()
    with torch.no_grad():
        emb = model.apply_head(cached.base(cached.isotropy_texts)).cpu().numpy()
        q = model.apply_head(cached.base(list(ev.queries.values()), "query")).cpu().numpy() if ev else None
        d = model.apply_head(cached.base(ev.doc_texts)).cpu().numpy() if ev else None
    return measure(emb, q, d, ev)


def _init(run: _Run, cached: _Cached) -> _Start:
    """Fit the head's initialisation (identity or whitening) on up to ``FIT_SAMPLE`` corpus documents; measure the start.

    On rank 0, measures the base model's cosine retrieval (with an eval set) and the initialised model.
    """
    model, ev = run.model, run.ev
    fit_ids = torch.randperm(len(cached.corpus), generator=torch.Generator().manual_seed(run.cfg.seed))[:FIT_SAMPLE]
    fit_on = cached.corpus[fit_ids].cpu().numpy()
    if model.ragcun_config["init"] == "identity":
        model.fit_identity(fit_on)
    elif model.ragcun_config["init"] == "whitening":
        model.fit_whitening(fit_on)
    base_metrics = None
    if ev is not None and run.rank == 0:
        metrics = retrieval_metrics(cached.base(list(ev.queries.values()), "query").cpu(), cached.base(ev.doc_texts).cpu(), ev)
        base_metrics = {"ndcg@10": metrics["ndcg@10"], "metrics": metrics}
    before = _measure_cached(run, cached) if run.rank == 0 else {}
    return _Start(fit_ids=fit_ids, base_metrics=base_metrics, before=before)


def _run_frozen(run: _Run, cached: _Cached, start: _Start, loss: GaussianRAGLoss) -> _Outcome:
    """Train the head on the cached base embeddings (the corpus serving as negatives); re-centre; measure on rank 0."""
    cfg, train_set, model = run.cfg, run.train_set, run.model
    positive_ids = torch.as_tensor(train_set.positive_ids)
    source = CachedBatchSource(
        columns=[cached.base(train_set.anchors, "query"), cached.corpus[positive_ids]]
        + ([cached.base(train_set.negatives)] if train_set.negatives else []),
        corpus=cached.corpus,
        positive_ids=positive_ids.to(cached.device),
    )
    history = train_frozen(
        model, loss, source, epochs=run.epochs, max_steps=cfg.max_steps, batch_size=cfg.batch_size, lr=run.lr, seed=cfg.seed,
        corpus_negatives=cfg.corpus_negatives, isotropy_sample=cfg.batch_size, checkpoint_dir=run.checkpoint_dir,
        save_steps=cfg.save_steps, resume=run.resume, show_progress=cfg.show_progress,
    )
    recentred = None
    if cfg.recentre:
        with torch.no_grad():
            recentred = recentre_head(model, model.apply_head(cached.corpus[start.fit_ids]).cpu())
    held_outputs = None
    if run.held is not None and run.rank == 0:
        with torch.no_grad():
            held_outputs = (model.apply_head(cached.base(run.held.queries, "query")).cpu().numpy(),
                            model.apply_head(cached.corpus).cpu().numpy())
    return _Outcome(history=history, recentred=recentred, after=_measure_cached(run, cached) if run.rank == 0 else {},
                    held_outputs=held_outputs)


def _run_full(run: _Run, cached: _Cached, start: _Start, loss: GaussianRAGLoss) -> _Outcome:
    """Fine-tune the whole model with sentence-transformers' trainer; re-centre; measure its own encodings on rank 0."""
    from ragcun_train.full import measure_encoded, train_full

    cfg, train_set, model = run.cfg, run.train_set, run.model
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
    held_outputs = None
    if run.held is not None and run.rank == 0:
        held_outputs = (model.encode_query(run.held.queries, batch_size=64, convert_to_numpy=True),
                        model.encode_document(train_set.corpus, batch_size=64, convert_to_numpy=True,
                                              show_progress_bar=cfg.show_progress))
    return _Outcome(history=history, evaluations=evaluations, recentred=recentred, after=after,
                    held_outputs=held_outputs)


def _run_training(run: _Run, cached: _Cached, start: _Start) -> _Outcome:
    """Build the objective's loss and train: the head alone on cached embeddings (frozen base), or the whole model.

    ``--objective distil`` first builds its rows: pseudo-queries, teacher rankings and margins (:mod:`ragcun_train.distil`).
    """
    if run.documents is not None:
        titles, bodies = run.documents
        def embed(texts: list[str], role: str) -> np.ndarray:
            with torch.no_grad():
                return run.model.apply_head(cached.base(texts, role)).cpu().numpy()

        run.train_set = distil_set(titles, bodies, embed, source=run.train_set.source, seed=run.cfg.seed)
        log.info("distil: %d (pseudo-query, positive, hard negative, teacher margin) rows", len(run.train_set))
    loss = build_loss(run.model, run.weights, run.cfg.temperature, run.cfg.num_slices)
    return (_run_frozen if run.cfg.freeze_base else _run_full)(run, cached, start, loss)


def _report(run: _Run, cached: _Cached, start: _Start, outcome: _Outcome) -> dict[str, Any]:
    """Assemble the report, then write the model and its card, ``training_report.json`` and the plots; log the summary."""
    cfg, train_set, ev, before, after = run.cfg, run.train_set, run.ev, start.before, outcome.after
    spectra = {"before": covariance_spectrum(before.pop("_emb")), "after": covariance_spectrum(after.pop("_emb"))}
    calibrator = None
    if run.held is not None and outcome.held_outputs is not None:
        calibrator = fit_calibrator(*outcome.held_outputs, run.held, train_set.source)
    run.model.relevance_calibrator = calibrator
    report = {
        "config": asdict(cfg) | {"lr": run.lr, "epochs": run.epochs, "weights": run.weights},
        "data": {"source": train_set.source, "kind": train_set.kind, "rows": len(train_set), "corpus": len(train_set.corpus),
                 "held_back_queries": len(run.held.queries) if run.held is not None else 0,
                 "skipped": dict(train_set.skipped)},
        "calibrator": calibrator.to_dict() if calibrator is not None else None,
        "eval": {"source": run.ev_name, "split": str(run.ev_name).rsplit(":", 1)[1], "queries": len(ev.queries),
                 "docs": len(ev.doc_ids)} if ev else None,
        "cache": {"dir": str(cached.cache.dir), "hits": cached.cache.hits, "misses": cached.cache.misses},
        "base": start.base_metrics,
        "before": before,
        "after": after,
        "recentred": outcome.recentred,
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
