"""When does an approximate index pay? recall@10 against exact search and per-query speed-up.

HNSW32 (efSearch sweep) and IVF (nprobe sweep) through ``ragcun.L2Index``, on random N(0, I)
384-d vectors and on real embeddings: the BEIR SciFact corpus through the bundled base model and
through its Gaussian head (queries: SciFact's queries). Single queries, FAISS on one thread.
Run: python benchmarks/ann.py [--n 100000] [--skip-scifact]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from ragcun.l2_index import L2Index

K = 10
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"


def _per_query_ms(index: L2Index, queries: np.ndarray) -> tuple[float, list[list[str | None]]]:
    index.search(queries[0], K)
    found: list[list[str | None]] = []
    t = time.perf_counter()
    for q in queries:
        found.append(index.search(q, K)[0][0])
    return (time.perf_counter() - t) / len(queries) * 1e3, found


def _recall(found: list[list[str | None]], exact: list[list[str | None]]) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def sweep(name: str, x: np.ndarray, queries: np.ndarray) -> None:
    """Print recall@10 and speed-up tables for HNSW32 and IVF on ``x`` (single queries, one FAISS thread)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # restored below: the setting also caps torch's OpenMP pool while encoding
    try:
        _sweep(name, x, queries)
    finally:
        faiss.omp_set_num_threads(threads)


def _sweep(name: str, x: np.ndarray, queries: np.ndarray) -> None:
    n = len(x)
    ids = [str(i) for i in range(n)]
    flat = L2Index(x.shape[1])
    flat.add(ids, x)
    flat_ms, exact = _per_query_ms(flat, queries)
    print(f"\n{name}: {n:,} vectors, {x.shape[1]}-d, {len(queries)} queries; exact flat {flat_ms:.3f} ms/query")
    print(f"{'index':14s} {'param':>12s} {'recall@10':>10s} {'ms/query':>9s} {'speed-up':>9s}")
    hnsw = L2Index(x.shape[1], "HNSW32")
    t = time.perf_counter()
    hnsw.add(ids, x)
    print(f"  (HNSW32 built in {time.perf_counter() - t:.1f} s)")
    for ef in (16, 32, 64, 128, 256, 512):
        hnsw.set_search_params(ef_search=ef)
        ms, found = _per_query_ms(hnsw, queries)
        print(f"{'HNSW32':14s} {'efSearch=' + str(ef):>12s} {_recall(found, exact):10.3f} {ms:9.3f} {flat_ms / ms:8.1f}x")
    nlist = int(4 * np.sqrt(n))
    ivf = L2Index(x.shape[1], f"IVF{nlist},Flat", train_size=min(n, 40 * nlist))
    t = time.perf_counter()
    ivf.add(ids, x)
    print(f"  (IVF{nlist},Flat trained and filled in {time.perf_counter() - t:.1f} s)")
    for nprobe in (1, 4, 16, 64, 256):
        if nprobe > nlist:
            break
        ivf.set_search_params(nprobe=nprobe)
        ms, found = _per_query_ms(ivf, queries)
        print(f"{'IVF' + str(nlist) + ',Flat':14s} {'nprobe=' + str(nprobe):>12s} {_recall(found, exact):10.3f} "
              f"{ms:9.3f} {flat_ms / ms:8.1f}x")


def scifact(limit_queries: int) -> tuple[list[str], list[str]]:
    with (SCIFACT / "corpus.jsonl").open() as fh:
        docs = [json.loads(line) for line in fh]
    with (SCIFACT / "queries.jsonl").open() as fh:
        queries = [json.loads(line)["text"] for line in fh][:limit_queries]
    return [f"{d['title']} {d['text']}".strip() for d in docs], queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="random vectors")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-scifact", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sweep("random N(0, I)", rng.standard_normal((args.n, 384), dtype=np.float32),
          rng.standard_normal((args.queries, 384), dtype=np.float32))
    if args.skip_scifact:
        return
    if not (SCIFACT / "corpus.jsonl").is_file():
        print(f"\nSciFact not found at {SCIFACT}; skipping the real-embedding runs")
        return
    import torch

    from ragcun.encoder import GaussianEncoder

    docs, queries = scifact(args.queries)
    encoder = GaussianEncoder()
    t = time.perf_counter()
    base_docs = encoder.encode_base(docs, batch_size=64, show_progress_bar=True)
    base_queries = encoder.encode_base(queries, batch_size=64)
    print(f"\n(SciFact encoded in {time.perf_counter() - t:.0f} s)")
    sweep("SciFact, bundled base model", base_docs.astype(np.float32), base_queries.astype(np.float32))
    with torch.no_grad():
        head = [encoder.apply_head(torch.from_numpy(a)).numpy().astype(np.float32) for a in (base_docs, base_queries)]
    sweep("SciFact, Gaussian head", head[0], head[1])


if __name__ == "__main__":
    main()
