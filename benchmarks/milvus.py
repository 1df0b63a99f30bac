"""Milvus Lite beside FAISS: add time, per-query latency and recall@10 on random N(0, I) vectors.

For each size, the same seeded 384-d N(0, I) vectors (the distribution ragcun embeddings are
trained toward) go into FAISS ``IndexFlatL2`` (exact: the recall reference), FAISS HNSW and
``MilvusL2Index`` on a fresh Milvus Lite file with FLAT and HNSW. Milvus rows time ``add``
(batched upserts) and, separately, ``flush`` plus the background index build; latency is one
query per call, as a retriever issues them. Feeds the README's "Scaling out" section (Milvus Lite
beside FAISS) and ``docs/scaling.md`` ("Which index at which size"). Run from the repository root::

    HF_HUB_OFFLINE=1 python -m benchmarks.milvus --sizes 10000 100000

``benchmarks.search`` reuses :func:`milvus_specs` and :func:`measure_milvus` for its Milvus rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.common import print_table, recall_at_k
from ragcun.index.milvus.index import MilvusL2Index


def wait_for_lite_index(index: MilvusL2Index) -> None:
    """Block until Milvus Lite's background worker has built the index on every sealed segment.

    Milvus Lite reports every index as finished at once, so this reaches into its in-process
    server (benchmark only: a Milvus cluster reports progress through ``describe_index``).
    """
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[index._lite_path]
    db.get_collection(index.collection)._wait_for_bg()


def latencies_ms(search, queries: np.ndarray) -> np.ndarray:
    """Milliseconds per single-query call of ``search(query_row)``."""
    out = []
    for row in queries:
        start = time.perf_counter()
        search(row[None, :])
        out.append((time.perf_counter() - start) * 1e3)
    return np.asarray(out)


def milvus_specs(m: int = 16, ef_construction: int = 200, ef: int = 64) -> dict[str, dict[str, Any]]:
    """``index_params`` of the measured Milvus index types: exact FLAT and HNSW (``M``, ``efConstruction``, ``ef``)."""
    return {"FLAT": {"index_type": "FLAT"},
            "HNSW": {"index_type": "HNSW", "params": {"M": m, "efConstruction": ef_construction},
                     "search_params": {"ef": ef}}}


def measure_milvus(path: str, spec: dict[str, Any], vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                   k: int, batch_size: int = 1_000) -> tuple[float, float, np.ndarray, float]:
    """``(add s, flush + build s, ms per single query, recall@k)`` of ``vectors`` (ids ``"0"``, ``"1"``, ...)
    in a ``MilvusL2Index`` (vectors only, no text field) on a fresh Milvus Lite file ``path``; ``truth`` holds the
    exact top-k rows."""
    with MilvusL2Index(path, index_params=spec, batch_size=batch_size, lexical=False) as index:
        start = time.perf_counter()
        index.add([str(i) for i in range(len(vectors))], vectors)
        add_s = time.perf_counter() - start
        start = time.perf_counter()
        index.flush()
        wait_for_lite_index(index)
        build_s = time.perf_counter() - start
        index.search(queries[:1], k)  # warm-up: loads the segment indexes
        got_ids, _ = index.search(queries, k)
        got = [[int(i) for i in r if i is not None] for r in got_ids]
        lat = latencies_ms(lambda q: index.search(q, k), queries)
    return add_s, build_s, lat, recall_at_k(got, truth.tolist())


def row(n: int, name: str, add_s: float, build_s: float | None, lat: np.ndarray, rec: float) -> dict[str, object]:
    """One table row: add and build seconds, median and 95th-percentile ms per query, recall@k."""
    return {"n": n, "index": name, "add s": add_s, "build s": "-" if build_s is None else build_s,
            "p50 ms": float(np.median(lat)), "p95 ms": float(np.percentile(lat, 95)), "recall@k": rec}


def bench_size(n: int, args: argparse.Namespace, workdir: Path) -> Iterator[dict[str, object]]:
    """The table rows for one collection size, each as soon as it is measured."""
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((n, args.dim)).astype(np.float32)
    queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)

    start = time.perf_counter()
    flat = faiss.IndexFlatL2(args.dim)
    flat.add(vectors)
    add_s = time.perf_counter() - start
    _, truth = flat.search(queries, args.k)
    lat = latencies_ms(lambda q: flat.search(q, args.k), queries)
    yield row(n, "FAISS IndexFlatL2", add_s, None, lat, 1.0)

    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(args.dim, args.hnsw_m)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(vectors)
    add_s = time.perf_counter() - start
    hnsw.hnsw.efSearch = args.ef
    got = hnsw.search(queries, args.k)[1]
    lat = latencies_ms(lambda q: hnsw.search(q, args.k), queries)
    yield row(n, f"FAISS HNSW{args.hnsw_m} ef={args.ef}", add_s, None, lat, recall_at_k(got.tolist(), truth.tolist()))

    specs = milvus_specs(args.hnsw_m, args.ef_construction, args.ef)
    for name in args.indexes:
        add_s, build_s, lat, rec = measure_milvus(str(workdir / f"{name.lower()}-{n}.db"), specs[name], vectors,
                                                  queries, truth, args.k, args.batch_size)
        label = f"Milvus Lite {name}" + (f" ef={args.ef}" if name == "HNSW" else "")
        yield row(n, label, add_s, build_s, lat, rec)


def main() -> None:
    """Parse flags, run every size, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes")
    parser.add_argument("--indexes", nargs="+", default=["FLAT", "HNSW"], choices=["FLAT", "HNSW"],
                        help="Milvus index types to measure")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200, help="queries timed (one per call)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, default=64, help="HNSW search breadth (FAISS efSearch, Milvus ef)")
    parser.add_argument("--batch-size", type=int, default=1_000, help="rows per Milvus upsert")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"{args.dim}-d N(0, I) vectors, {args.queries} single-vector queries, k={args.k}, "
          f"faiss threads={faiss.omp_get_max_threads()}")
    with tempfile.TemporaryDirectory(prefix="ragcun-milvus-bench-") as workdir:
        for n in args.sizes:
            print_table(list(bench_size(n, args, Path(workdir))), f"n = {n:,}")


if __name__ == "__main__":
    main()
