"""Frozen-base training: only the Gaussian head (and the JEPA predictor) learn, on cached base embeddings
(:func:`train_frozen`, the loop; :func:`run_frozen`, a ``train(...)`` run's frozen step around it).

Each step maps the cached base embeddings of a batch through ``model.apply_head`` and sums the
loss components; through :meth:`GaussianRAGLoss.compute_loss_from_embeddings` the ranking
components also rank every anchor against the cached corpus (up to ``corpus_negatives``
documents), so the whole corpus serves as negatives at little cost. Under
``torch.distributed`` each rank takes its share of every batch and gradients are averaged, as DDP
would (SIGReg's statistics are all-reduced by ``ragcun.stats.sigreg``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ragcun import GaussianEncoder, distributed
from ragcun.losses import GaussianRAGLoss
from ragcun_train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ragcun_train.data import TrainingSet
from ragcun_train.recentre import recentre_head
from ragcun_train.state import Cached, Outcome, Run, Start

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""

    @classmethod
    def at_step(cls, step: int, loss: float, checkpoint_dir: Path, frozen: bool, details: str = "") -> NonFiniteLossError:
        """The error for a non-finite ``loss`` at ``step``, naming the newest checkpoint in ``checkpoint_dir`` to resume from."""
        last = latest_checkpoint(checkpoint_dir, frozen)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
        return cls(f"step {step}: the loss is {loss}{details}; training stopped and {kept}. "
                   "Lower --lr or the λ weights and resume with --resume.")


@dataclass
class CachedBatchSource:
    """Cached base embeddings of the training rows and of the corpus.

    ``columns`` are (anchors, positives[, negatives]) base embeddings (N, D_in) each;
    ``corpus`` (M, D_in) with ``positive_ids`` (N,) indexing each row's positive in it.
    """

    columns: list[torch.Tensor]
    corpus: torch.Tensor | None
    positive_ids: torch.Tensor | None


def step_seed(seed: int, step: int) -> int:
    """The RNG seed of one step, so a resumed run draws what the uninterrupted one would."""
    return (seed * 1_000_003 + step) % (2**63 - 1)


def trainable_modules(model: GaussianEncoder, loss: GaussianRAGLoss) -> dict[str, torch.nn.Module]:
    """What frozen mode trains and checkpoints: the head and the loss components' own state (predictor, SIGReg step).

    The holders share their tensors with the components, so loading a checkpoint into them restores the components.
    """
    modules: dict[str, torch.nn.Module] = {"head": torch.nn.ModuleList(model.head_modules())}
    for name, component in loss.components.items():
        own = {k: m for k, m in component.named_children() if k != "model"}
        if own or list(component.buffers(recurse=False)):
            holder = torch.nn.Module()
            for k, m in own.items():
                holder.add_module(k, m)
            for k, b in component.named_buffers(recurse=False):
                holder.register_buffer(k, b)
            modules[f"loss-{name}"] = holder
    return modules


@dataclass
class _Batches:
    """Each step's rows of the training set: a seeded permutation per epoch, cut into batches; under
    ``torch.distributed``, this rank's share of each batch."""

    n: int
    batch_size: int
    seed: int
    rank: int
    world: int
    _epoch: int | None = field(default=None, init=False, repr=False)
    _perm: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def per_epoch(self) -> int:
        """Steps in one epoch (the last, incomplete batch is dropped)."""
        return self.n // self.batch_size

    def rows(self, step: int) -> torch.Tensor:
        """The row numbers of ``step``'s batch (this rank's share)."""
        epoch, within = divmod(step, self.per_epoch)
        if self._perm is None or epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(step_seed(self.seed, -1 - epoch)))
        idx = self._perm[within * self.batch_size : (within + 1) * self.batch_size]
        return idx.chunk(self.world)[self.rank] if self.world > 1 else idx


def _corpus_negatives(model: GaussianEncoder, source: CachedBatchSource, idx: torch.Tensor, count: int, seed: int,
                      step: int) -> torch.Tensor | None:
    """Up to ``count`` random corpus documents other than the batch's positives, through the head (``None``: none)."""
    corpus, positive_ids = source.corpus, source.positive_ids
    if corpus is None or positive_ids is None:
        return None
    keep = torch.ones(corpus.size(0), dtype=torch.bool, device=corpus.device)
    keep[positive_ids[idx]] = False
    pool = keep.nonzero().squeeze(1)
    if pool.numel() > count:
        pool = pool[torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(step_seed(seed, step)))[:count]]
    return model.apply_head(corpus[pool]) if count > 0 else None


def _isotropy_sample(model: GaussianEncoder, corpus: torch.Tensor | None, size: int, seed: int, step: int,
                     rank: int, world: int) -> torch.Tensor | None:
    """``size`` random corpus documents (this rank's share) through the head, for the isotropy components."""
    if corpus is None or size <= 0:
        return None
    drawn = torch.randperm(corpus.size(0), generator=torch.Generator().manual_seed(step_seed(seed, -step - 10**9)))[:size]
    return model.apply_head(corpus[drawn.chunk(world)[rank] if world > 1 else drawn])


def _apply_gradients(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], loss: torch.Tensor, lr: float,
                     world: int) -> None:
    """Back-propagate ``loss``, average the gradients over the ranks and step the optimizer at learning rate ``lr``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if world > 1:
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()


def train_frozen(
    model: GaussianEncoder,
    loss: GaussianRAGLoss,
    source: CachedBatchSource,
    *,
    epochs: int,
    max_steps: int | None,
    batch_size: int,
    lr: float,
    seed: int,
    corpus_negatives: int,
    isotropy_sample: int,
    checkpoint_dir: Path,
    save_steps: int,
    resume: Path | None = None,
    show_progress: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train the head; return the per-step history (loss, each weighted component, lr, epoch).

    ``corpus_negatives``: how many cached corpus documents each anchor is ranked against;
    ``isotropy_sample``: how many random corpus documents join the isotropy components' input.
    The learning rate decays linearly to 0 over the run, as the HF trainer's default.

    Raises :class:`NonFiniteLossError` on a NaN or infinite loss, keeping the last checkpoint.
    """
    rank, world = distributed.rank(), distributed.world_size()
    n = source.columns[0].size(0)
    if n < 2:
        raise ValueError("frozen training needs at least 2 rows")
    batches = _Batches(n, min(batch_size, n), seed, rank, world)
    total = batches.per_epoch * epochs if not max_steps else max_steps
    modules = trainable_modules(model, loss)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    start, history = 0, []
    if resume is not None:
        meta = load_checkpoint(resume, modules, optimizer)
        start, history = int(meta["step"]), list(meta["history"])
        log.info("resumed from %s at step %d of %d", resume, start, total)
    for m in model.head_modules():
        m.train()
    bar = tqdm(total=total, initial=start, desc="training head", disable=not show_progress or rank != 0, unit="step")
    for step in range(start, total):
        idx = batches.rows(step)
        torch.manual_seed(step_seed(seed, step))
        columns = [model.apply_head(col[idx]) for col in source.columns]
        components = loss.compute_loss_from_embeddings(
            columns, corpus_negatives=_corpus_negatives(model, source, idx, corpus_negatives, seed, step),
            corpus_sample=_isotropy_sample(model, source.corpus, isotropy_sample, seed, step, rank, world))
        total_loss = sum(components.values())
        values = {k: float(v.detach()) for k, v in components.items()}
        if not math.isfinite(float(total_loss.detach())):
            raise NonFiniteLossError.at_step(step + 1, float(total_loss.detach()), checkpoint_dir, frozen=True,
                                             details=f" (components {values})")
        _apply_gradients(optimizer, params, total_loss, lr * max(0.0, 1.0 - step / max(1, total)), world)
        epoch, within = divmod(step, batches.per_epoch)
        entry = {"step": step + 1, "epoch": round(epoch + (within + 1) / batches.per_epoch, 4),
                 "lr": optimizer.param_groups[0]["lr"], "loss": float(total_loss.detach()), **values, "time": time.time()}
        history.append(entry)
        if on_step is not None:
            on_step(entry)
        bar.update(1)
        bar.set_postfix(loss=f"{entry['loss']:.4f}")
        if rank == 0 and save_steps and (step + 1) % save_steps == 0 and step + 1 < total:
            save_checkpoint(checkpoint_dir, step + 1, modules, optimizer, {"history": history})
    bar.close()
    for m in model.head_modules():
        m.eval()
    return history


def run_frozen(run: Run, cached: Cached, start: Start, loss: GaussianRAGLoss, train_set: TrainingSet) -> Outcome:
    """Train the head on the cached base embeddings of ``train_set`` (the corpus serving as negatives); re-centre;
    measure on rank 0."""
    cfg, model = run.cfg, run.model
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
    held, held_outputs = run.data.held, None
    if held is not None and run.rank == 0:
        with torch.no_grad():
            held_outputs = (cached.outputs(model, held.queries, "query"), model.apply_head(cached.corpus).cpu().numpy())
    return Outcome(train_set=train_set, history=history, recentred=recentred,
                   after=cached.measure(model, run.ev) if run.rank == 0 else {}, held_outputs=held_outputs)
