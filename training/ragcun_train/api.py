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
import torch.distributed as dist
import torch.nn.functional as F

from ragcun import GaussianEncoder
from ragcun.embedding_cache import EmbeddingCache
from ragcun.encoder import resolve_model_path
from ragcun.losses.jepa_predictive import PREDICTOR_DIR
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_train.checkpoint import list_checkpoints
from ragcun_train.config import CHECKPOINT_DIR, DEMO_DIR, TrainConfig
from ragcun_train.data import TrainingSet, load_training_set
from ragcun_train.evaluation import measure, retrieval_metrics
from ragcun_train.frozen import CachedBatchSource, train_frozen
from ragcun_train.model_card import write_model_card
from ragcun_train.objectives import build_loss
from ragcun_train.recentre import recentre_head
from ragcun_train.report import (
    ISOTROPY_PLOT,
    LOSS_PLOT,
    REPORT_FILE,
    covariance_spectrum,
    plot_isotropy,
    plot_losses,
    summary_lines,
    write_json_atomic,
)

log = logging.getLogger(__name__)

FIT_SAMPLE = 20_000


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its folder and the report written beside it."""

    model: GaussianEncoder
    output: Path
    report: dict[str, Any] = field(default_factory=dict)


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _init_distributed(device: str) -> None:
    """Join the process group when launched by torchrun (gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo" if device == "cpu" else "nccl")


def _seed_everything(seed: int) -> None:
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
    if not cfg.resume:
        return None
    if isinstance(cfg.resume, str) and cfg.resume not in ("true", "latest"):
        return Path(cfg.resume)
    found = list_checkpoints(checkpoint_dir) if cfg.freeze_base else sorted(
        checkpoint_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint in {checkpoint_dir}")
    return found[-1]


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
    unique = list(dict.fromkeys(texts))
    return unique if len(unique) <= k else random.Random(seed).sample(unique, k)


def _model_entries(folder: Path) -> set[str]:
    """The module folders a saved model in ``folder`` lists in its ``modules.json`` (plain names only), and its JEPA predictor."""
    try:
        listed = {m.get("path") for m in json.loads((folder / "modules.json").read_text())}
    except (OSError, ValueError, TypeError, AttributeError):  # no model there, or not one this can read: remove nothing
        listed = set()
    return {n for n in listed if isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n} | {PREDICTOR_DIR}


def _save_model(model: GaussianEncoder, output: Path, report: dict[str, Any]) -> None:
    """Write the model and its card into ``output`` via a temporary sibling folder, entry by entry with ``os.replace``.

    Module folders of a model saved there before that this one does not have are removed.
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
            shutil.rmtree(output / name, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def train(data: str | os.PathLike | None = None, **options: Any) -> TrainResult:
    """Train a Gaussian model exactly as ``ragcun-train`` does; ``options`` are :class:`TrainConfig` fields.

    With no ``data``, trains on the bundled demo (SciFact training pairs) and reports on its test
    queries. Writes the model, its card, ``training_report.json`` and the plots into ``output``.
    Bad options, a missing local model and an ``output`` holding a previous run (without
    ``overwrite`` or ``resume``) raise ``ValueError`` / ``FileNotFoundError`` before anything loads.
    """
    cfg = TrainConfig(data=None if data is None else str(data), **options)
    cfg.check()
    resolve_model_path(cfg.model)  # a missing local model fails here, before any data or model loads
    t0 = time.time()
    device = _device(cfg.device)
    freeze = cfg.freeze_base if cfg.freeze_base is not None else device == "cpu"
    cfg.freeze_base, cfg.device = freeze, device
    lr = cfg.lr if cfg.lr is not None else (1e-3 if freeze else 2e-5)
    epochs = cfg.epochs if cfg.epochs is not None else (20 if freeze else 1)
    _init_distributed(device)
    _seed_everything(cfg.seed)
    rank = _rank()
    data_path = Path(cfg.data) if cfg.data else DEMO_DIR
    if cfg.data is None and cfg.eval_data is None:
        cfg.eval_data, cfg.eval_split = str(DEMO_DIR), cfg.eval_split or "test"
    output = Path(cfg.output)
    checkpoint_dir = output / CHECKPOINT_DIR
    resume = _resume_path(cfg, checkpoint_dir)
    if cfg.overwrite and rank == 0:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the previous run's: they must not mix with this run's
    weights = cfg.weights()

    train_set: TrainingSet = load_training_set(data_path, cfg.format)
    ev, ev_name = _resolve_eval(cfg, data_path)
    model = GaussianEncoder(cfg.model, output_dim=cfg.output_dim, head=cfg.head, init=cfg.init, device=device)

    cache = EmbeddingCache(model, cfg.cache_dir, show_progress=cfg.show_progress)
    iso_texts = _sample(ev.doc_texts if ev is not None else train_set.corpus, cfg.isotropy_sample, cfg.seed)
    wanted = {"query": [*train_set.anchors, *(ev.queries.values() if ev is not None else [])],
              "document": [*train_set.corpus, *(train_set.negatives or []), *iso_texts,
                           *(ev.doc_texts if ev is not None else [])]}
    if rank == 0:
        for role, texts in wanted.items():
            cache.get(texts, role)
    _barrier()
    if rank != 0:
        cache.store.refresh()  # pick up what rank 0 wrote

    def base(texts: list[str], role: str = "document") -> torch.Tensor:
        """Unit-length base embeddings of ``texts`` as ``role`` (the head's input, as serving encodes them) from the cache."""
        return F.normalize(torch.from_numpy(cache.get(texts, role)), p=2, dim=1).to(device)

    corpus_base = base(train_set.corpus)
    fit_on_ids = torch.randperm(len(corpus_base), generator=torch.Generator().manual_seed(cfg.seed))[:FIT_SAMPLE]
    fit_on = corpus_base[fit_on_ids].cpu().numpy()
    if model.ragcun_config["init"] == "identity":
        model.fit_identity(fit_on)
    elif model.ragcun_config["init"] == "whitening":
        model.fit_whitening(fit_on)

    def measure_cached() -> dict[str, Any]:
        model.eval()
        with torch.no_grad():
            emb = model.apply_head(base(iso_texts)).cpu().numpy()
            q = model.apply_head(base(list(ev.queries.values()), "query")).cpu().numpy() if ev else None
            d = model.apply_head(base(ev.doc_texts)).cpu().numpy() if ev else None
        return measure(emb, q, d, ev)

    base_metrics = None
    if ev is not None and rank == 0:
        base_metrics = {"ndcg@10": None, "metrics": retrieval_metrics(base(list(ev.queries.values()), "query").cpu(), base(ev.doc_texts).cpu(), ev)}
        base_metrics["ndcg@10"] = base_metrics["metrics"]["ndcg@10"]
    before = measure_cached() if rank == 0 else {}

    recentred, evaluations = None, []
    loss = build_loss(model, weights, cfg.temperature, cfg.num_slices)
    if freeze:
        source = CachedBatchSource(
            columns=[base(train_set.anchors, "query"), corpus_base[torch.as_tensor(train_set.positive_ids)]]
            + ([base(train_set.negatives)] if train_set.negatives else []),
            corpus=corpus_base,
            positive_ids=torch.as_tensor(train_set.positive_ids, device=device),
        )
        history = train_frozen(
            model, loss, source, epochs=epochs, max_steps=cfg.max_steps, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
            corpus_negatives=cfg.corpus_negatives, isotropy_sample=cfg.batch_size, checkpoint_dir=checkpoint_dir, save_steps=cfg.save_steps, resume=resume,
            show_progress=cfg.show_progress,
        )
        if cfg.recentre:
            with torch.no_grad():
                recentred = recentre_head(model, model.apply_head(corpus_base[torch.as_tensor(fit_on_ids)]).cpu())
        after = measure_cached() if rank == 0 else {}
    else:
        from ragcun_train.full import measure_encoded, train_full

        history, evaluations = train_full(
            model, loss, train_set, ev, iso_texts, checkpoint_dir=checkpoint_dir, epochs=epochs, max_steps=cfg.max_steps,
            batch_size=cfg.batch_size, lr=lr, seed=cfg.seed, freeze_layers=cfg.freeze_layers, save_steps=cfg.save_steps,
            eval_steps=cfg.eval_steps, resume=resume, device=device, show_progress=cfg.show_progress,
        )
        if cfg.recentre:
            fit_texts = [train_set.corpus[i] for i in fit_on_ids[: cfg.isotropy_sample].tolist()]
            recentred = recentre_head(model, model.encode(fit_texts, batch_size=64, convert_to_numpy=True))
        after = measure_encoded(model, iso_texts, ev) if rank == 0 else {}

    report: dict[str, Any] = {}
    if rank == 0:
        spectra = {"before": covariance_spectrum(before.pop("_emb")), "after": covariance_spectrum(after.pop("_emb"))}
        report = {
            "config": asdict(cfg) | {"lr": lr, "epochs": epochs, "weights": weights},
            "data": {"source": train_set.source, "kind": train_set.kind, "rows": len(train_set), "corpus": len(train_set.corpus),
                     "skipped": dict(train_set.skipped)},
            "eval": {"source": ev_name, "split": ev_name.rsplit(":", 1)[1], "queries": len(ev.queries), "docs": len(ev.doc_ids)} if ev else None,
            "cache": {"dir": str(cache.dir), "hits": cache.hits, "misses": cache.misses},
            "base": base_metrics,
            "before": before,
            "after": after,
            "recentred": recentred,
            "steps": history,
            "evaluations": evaluations,
            "seconds": round(time.time() - t0, 1),
        }
        _save_model(model, output, report)
        write_json_atomic(output / REPORT_FILE, report)
        if history:
            plot_losses(history, output / LOSS_PLOT)
        plot_isotropy(before["isotropy"], after["isotropy"], spectra, output / ISOTROPY_PLOT)
        for line in summary_lines(report):
            log.info(line)
    _barrier()
    return TrainResult(model=model, output=output, report=report)
