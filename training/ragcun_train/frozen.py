"""Frozen-base training: only the Gaussian head (and the JEPA predictor) learn, on cached base embeddings.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ragcun import GaussianEncoder, distributed
from ragcun.losses import GaussianRAGLoss
from ragcun_train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

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

    Raises :class:`NonFiniteLossError` on a NaN or infinite loss, keeping the last checkpoint.
    """
    rank, world = distributed.rank(), distributed.world_size()
    n = source.columns[0].size(0)
    if n < 2:
        raise ValueError("frozen training needs at least 2 rows")
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size
    total = steps_per_epoch * epochs if not max_steps else max_steps
    modules = trainable_modules(model, loss)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def schedule(step: int) -> float:
        """Linear decay to 0 over ``total`` steps, as the HF trainer's default."""
        return max(0.0, 1.0 - step / max(1, total))

    history: list[dict[str, Any]] = []
    start = 0
    if resume is not None:
        meta = load_checkpoint(resume, modules, optimizer)
        start, history = int(meta["step"]), list(meta["history"])
        log.info("resumed from %s at step %d of %d", resume, start, total)
    for m in model.head_modules():
        m.train()
    device = source.columns[0].device
    corpus = source.corpus
    perm: torch.Tensor | None = None
    bar = tqdm(total=total, initial=start, desc="training head", disable=not show_progress or rank != 0, unit="step")
    for step in range(start, total):
        epoch, within = divmod(step, steps_per_epoch)
        if perm is None or within == 0:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(step_seed(seed, -1 - epoch)))
        idx = perm[within * batch_size : (within + 1) * batch_size]
        idx = idx.chunk(world)[rank] if world > 1 else idx
        torch.manual_seed(step_seed(seed, step))
        columns = [model.apply_head(col[idx]) for col in source.columns]
        negatives = None
        if corpus is not None and source.positive_ids is not None:
            keep = torch.ones(corpus.size(0), dtype=torch.bool, device=device)
            keep[source.positive_ids[idx]] = False
            pool = keep.nonzero().squeeze(1)
            if pool.numel() > corpus_negatives:
                pool = pool[torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(step_seed(seed, step)))[:corpus_negatives]]
            negatives = model.apply_head(corpus[pool]) if corpus_negatives > 0 else None
        sample = None
        if corpus is not None and isotropy_sample > 0:
            drawn = torch.randperm(corpus.size(0), generator=torch.Generator().manual_seed(step_seed(seed, -step - 10**9)))
            sample = model.apply_head(corpus[drawn[:isotropy_sample].chunk(world)[rank] if world > 1 else drawn[:isotropy_sample]])
        components = loss.compute_loss_from_embeddings(columns, corpus_negatives=negatives, corpus_sample=sample)
        total_loss = sum(components.values())
        values = {k: float(v.detach()) for k, v in components.items()}
        if not math.isfinite(float(total_loss.detach())):
            raise NonFiniteLossError.at_step(step + 1, float(total_loss.detach()), checkpoint_dir, frozen=True,
                                             details=f" (components {values})")
        optimizer.zero_grad(set_to_none=True)
        total_loss.backward()
        if world > 1:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule(step)
        optimizer.step()
        entry = {"step": step + 1, "epoch": round(epoch + (within + 1) / steps_per_epoch, 4), "lr": optimizer.param_groups[0]["lr"],
                 "loss": float(total_loss.detach()), **values, "time": time.time()}
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
