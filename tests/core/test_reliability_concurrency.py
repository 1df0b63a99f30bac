"""Searches during adds and removes return full rows; the readers-writer lock (issue 12, item 3)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.io.rwlock import RWLock

DIM, BASE, K = 8, 60, 10


@pytest.mark.parametrize("factory, kwargs", [("Flat", {}), ("HNSW16", {}),
                                             ("IVF4,Flat", {"train_size": 40, "nprobe": 4})])
def test_rows_stay_full_while_other_threads_add_and_remove(factory: str, kwargs: dict) -> None:
    """``BASE`` vectors are never removed, so every row must hold ``K`` hits, whatever else changes.

    The churned vectors are copies of the queries, so they are among the hits of every search that
    sees them; a tiny GIL switch interval makes threads interleave often.
    """
    rng = np.random.default_rng(0)
    index = L2Index(DIM, factory, **kwargs)
    index.add([f"base{i}" for i in range(BASE)], rng.standard_normal((BASE, DIM)).astype(np.float32))
    queries = rng.standard_normal((64, DIM)).astype(np.float32)
    stop, problems, searches = threading.Event(), [], [0]

    def churn(worker: int) -> None:
        step = 0
        while not stop.is_set():
            ids = [f"w{worker}-{step}-{j}" for j in range(len(queries))]
            index.add(ids, queries)
            index.remove(ids)
            step += 1

    def search() -> None:
        while not stop.is_set():
            ids, dist = index.search(queries, K)
            searches[0] += 1
            short = [sum(i is not None for i in row) for row in ids if None in row]
            if short or not np.isfinite(dist).all():
                problems.append(short)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=search) for _ in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert searches[0] > 10
    assert not problems, f"{len(problems)} of {searches[0]} searches returned short rows, e.g. {problems[0]} hits"
    assert index.count == BASE


def test_readers_share_the_lock_and_a_writer_excludes_them() -> None:
    lock, inside, most = RWLock(), [0], [0]
    gate = threading.Barrier(3)

    def reader() -> None:
        with lock.read():
            inside[0] += 1
            gate.wait(timeout=5)  # all three readers are inside at once
            most[0] = max(most[0], inside[0])
            inside[0] -= 1

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert most[0] == 3
    order: list[str] = []
    with lock.write():
        with lock.write(), lock.read():  # the writer may re-enter and read
            order.append("writer")
        late = threading.Thread(target=lambda: lock.read().__enter__() or order.append("reader"))
        late.start()
        late.join(0.2)
        assert late.is_alive() and order == ["writer"]  # the reader waits for the writer
    late.join(5)
    assert order == ["writer", "reader"]


def test_concurrent_saves_to_one_path_leave_one_complete_copy(tmp_path) -> None:
    """Threads saving different indexes to one path: every save succeeds, the last one wins, nothing is left over."""
    indexes = []
    for n in (3, 4, 5):
        index = L2Index(DIM)
        index.add([f"i{n}-{j}" for j in range(n)], np.random.default_rng(n).standard_normal((n, DIM)))
        indexes.append(index)
    errors: list[BaseException] = []

    def save(index: L2Index) -> None:
        try:
            for _ in range(15):
                index.save(tmp_path / "ix")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(index,)) for index in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert L2Index.load(tmp_path / "ix").count in (3, 4, 5)
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]
