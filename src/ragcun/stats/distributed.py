"""The ``torch.distributed`` lookups every part of ragcun uses: rank, world size, barrier, joining under torchrun.

Outside a process group (a plain run, or torch built without distributed support) the process is
rank 0 of a world of 1 and the barrier does nothing.
"""

from __future__ import annotations

import os

import torch.distributed as dist


def is_initialized() -> bool:
    """Whether this process has joined a ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the process group (0 outside one)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """The number of processes in the process group (1 outside one)."""
    return dist.get_world_size() if is_initialized() else 1


def barrier() -> None:
    """Wait for every rank (nothing to wait for outside a process group)."""
    if is_initialized():
        dist.barrier()


def init_from_env(device: str) -> None:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1): gloo on CPU, NCCL otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo" if device == "cpu" else "nccl")
