"""Checkpoints: frozen mode's own (written here), and the lookup of both modes' newest one.

A frozen-mode checkpoint (the head, the predictor, SIGReg's slice counter and the optimizer) is a
folder ``<dir>/step-<N>`` holding ``state.safetensors`` (tensors) and ``state.json`` (step,
history, optimizer hyper-parameters). Each file is written atomically (:mod:`ragcun.io.atomic`), the
tensors first: a checkpoint counts as complete once its ``state.json`` exists, so a crash never
leaves a half-written one that a resume would take. No pickle. Full fine-tuning's checkpoints are the
sentence-transformers trainer's ``<dir>/checkpoint-<N>`` folders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from ragcun.io.atomic import atomic_file, write_json_atomic

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
FROZEN_PREFIX = "step-"
FULL_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR, as the trainer names its folders


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors = {f"optim.{pid}.{key}": torch.as_tensor(v).detach().clone().contiguous()
               for pid, state in sd["state"].items() for key, v in state.items()}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def save_checkpoint(directory: Path, step: int, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                    extra: dict[str, Any], keep: int = 2) -> Path:
    """Write ``directory/step-<step>`` (complete once its ``state.json`` is written) and delete all but the newest ``keep``
    checkpoints."""
    final = directory / f"{FROZEN_PREFIX}{step}"
    final.mkdir(parents=True, exist_ok=True)
    (final / STATE_JSON).unlink(missing_ok=True)  # incomplete (skipped by list_checkpoints) until its state.json is back
    tensors = {f"{name}.{k}": v.detach().cpu().clone().contiguous() for name, m in modules.items() for k, v in m.state_dict().items()}
    opt_tensors, groups = _optimizer_tensors(optimizer)
    with atomic_file(final / STATE_TENSORS, "wb") as f:
        f.write(save(tensors | opt_tensors))
    write_json_atomic(final / STATE_JSON, {"step": step, "param_groups": groups} | extra)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory: Path, frozen: bool = True) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first: frozen mode's ``step-<N>`` or full fine-tuning's ``checkpoint-<N>``."""
    if not directory.is_dir():
        return []
    prefix = FROZEN_PREFIX if frozen else FULL_PREFIX
    found = [p for p in directory.glob(f"{prefix}*") if p.name[len(prefix):].isdigit()
             and ((p / STATE_JSON).is_file() if frozen else p.is_dir())]
    return sorted(found, key=lambda p: int(p.name[len(prefix):]))


def latest_checkpoint(directory: Path, frozen: bool = True) -> Path | None:
    """The newest complete checkpoint in ``directory`` (see :func:`list_checkpoints`), or ``None`` if there is none."""
    found = list_checkpoints(directory, frozen)
    return found[-1] if found else None


def load_checkpoint(path: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore ``modules`` and ``optimizer`` from ``path``; return its JSON state (step, history, …)."""
    if not (path / STATE_JSON).is_file():
        raise FileNotFoundError(f"{path} is not a ragcun-train checkpoint ({STATE_JSON} missing)")
    meta = json.loads((path / STATE_JSON).read_text())
    tensors = load_file(str(path / STATE_TENSORS))
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
