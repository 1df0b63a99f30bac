"""Under torch.distributed (2 CPU processes, gloo) SIGReg on a split batch equals SIGReg on the whole."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ragcun.stats.sigreg import sigreg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, x: torch.Tensor, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        shard = x.chunk(world)[rank].clone().requires_grad_(True)
        loss = sigreg(shard, num_slices=32, step=3)
        loss.backward()
        out[rank] = (float(loss.detach()), shard.grad.clone())
    finally:
        dist.destroy_process_group()


def test_split_batch_equals_whole_batch():
    torch.manual_seed(0)
    x = torch.randn(64, 16) * 1.5 + 0.3
    whole = x.clone().requires_grad_(True)
    expected = sigreg(whole, num_slices=32, step=3)
    expected.backward()

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), x, out), nprocs=2, join=True)
        results = dict(out)

    for rank in range(2):
        value, grad = results[rank]
        assert value == pytest.approx(float(expected.detach()), rel=1e-5)
        # the gradient of each shard is the matching slice of the whole batch's gradient
        # Each rank's gradient is world_size x its slice of the whole-batch gradient, as in the
        # official code: DDP then averages over ranks, which gives the whole-batch gradient.
        assert torch.allclose(grad, 2 * whole.grad.chunk(2)[rank], atol=1e-6)


def _report_worker(rank: int, world: int, port: int, x: torch.Tensor, out: dict) -> None:
    from ragcun import isotropy_report

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if rank == 0:  # one rank alone reports: must neither hang nor mix in the other rank
            out[rank] = isotropy_report(x.chunk(world)[rank]).sigreg
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_isotropy_report_stays_local_under_distributed():
    from ragcun import isotropy_report

    x = torch.randn(128, 16)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_report_worker, args=(2, _free_port(), x, out), nprocs=2, join=True)
        value = out[0]
    assert value == pytest.approx(isotropy_report(x.chunk(2)[0]).sigreg, rel=1e-6)
