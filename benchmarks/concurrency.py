"""Queries per second of ``L2Index.search`` from 1 and several threads, with and without a writer.

Random N(0, I) vectors, one query per call, k = 10. Each configuration runs for ``--seconds``;
the optional writer thread adds and removes batches of 10 vectors in a loop meanwhile.
FAISS's own OpenMP threads are set to ``--omp`` (default 1) so the figures show what running
Python threads in parallel gives. No document cites it today: run it when changing ``L2Index``'s
locking. Run from the repository root:

    python -m benchmarks.concurrency [--n 20000] [--dim 384] [--threads 1 4] [--seconds 3]

Figures depend on the machine and its load (count its free cores); compare rows within one run.
"""

from __future__ import annotations

import argparse
import threading
import time

import faiss
import numpy as np

from benchmarks.common import print_table
from ragcun.index.faiss_l2 import L2Index


def measure(index: L2Index, queries: np.ndarray, threads: int, seconds: float, writer: bool, omp: int) -> float:
    """Queries per second over ``threads`` searching threads (plus one add/remove thread if ``writer``)."""
    stop = threading.Event()
    done = [0] * threads

    def search(slot: int) -> None:
        faiss.omp_set_num_threads(omp)  # OpenMP's setting is per thread
        i = slot
        while not stop.is_set():
            index.search(queries[i % len(queries)], 10)
            done[slot] += 1
            i += threads

    def write() -> None:
        faiss.omp_set_num_threads(omp)
        rng, step = np.random.default_rng(1), 0
        while not stop.is_set():
            ids = [f"w{step}-{j}" for j in range(10)]
            index.add(ids, rng.standard_normal((10, index.dim)).astype(np.float32))
            index.remove(ids)
            step += 1

    workers = [threading.Thread(target=search, args=(s,)) for s in range(threads)]
    if writer:
        workers.append(threading.Thread(target=write))
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    """Print a table of queries/s per factory, thread count and writer on/off."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="stored vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=3.0, help="per configuration")
    parser.add_argument("--factories", nargs="+", default=["Flat", "HNSW32"])
    parser.add_argument("--omp", type=int, default=1, help="FAISS OpenMP threads")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.omp)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    queries = rng.standard_normal((256, args.dim)).astype(np.float32)
    rows = []
    for factory in args.factories:
        index = L2Index(args.dim, factory)
        index.add([f"d{i}" for i in range(args.n)], data)
        for writer in (False, True):
            for threads in args.threads:
                qps = measure(index, queries, threads, args.seconds, writer, args.omp)
                rows.append({"factory": factory, "threads": threads, "writer": "yes" if writer else "no",
                             "queries/s": round(qps)})
    print_table(rows, f"n={args.n} dim={args.dim} k=10 omp={args.omp} seconds={args.seconds}")


if __name__ == "__main__":
    main()
