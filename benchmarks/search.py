"""Add time and per-query latency: ragcun's stores vs raw FAISS, the frameworks' default stores and Milvus Lite.

Random N(0, I) 384-d vectors, k = 10, one query at a time (queries are pre-embedded, so only the
store is timed). The hybrid row is ``DocStore`` (the stores' core) holding the same vectors with
real-text passages (``benchmarks/hybrid.py``'s corpus) and searched with SciFact query texts:
dense and hybrid (L2 + BM25) latency side by side. With pymilvus installed (or ``--milvus``), ``MilvusL2Index`` on Milvus Lite with
FLAT and HNSW (M=16, efConstruction=200, ef=64) is measured too, by ``benchmarks/milvus.py``'s
code: add (upserts), build (flush + index build), latency and recall@10 against exact FAISS.
Run: python benchmarks/search.py [--sizes 10000 100000] [--queries 200] [--no-milvus]
Figures depend on the machine and its load; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np
from hybrid import corpus_texts, query_texts, search_latency  # benchmarks/hybrid.py, beside this script
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import VectorStoreQuery

from langchain_ragcun import GaussianVectorStore as LangChainStore
from llama_index.vector_stores.ragcun import GaussianVectorStore as LlamaStore
from ragcun.index.faiss_l2 import L2Index
from ragcun.store.doc_store import DocStore, Record

DIM, K, CHUNK = 384, 10, 10_000


class Row(NamedTuple):
    """One measured store: add seconds, index build seconds, mean ms per query, recall@K (``None``: not measured)."""

    name: str
    add_s: float
    build_s: float | None
    ms_per_query: float
    recall: float | None


class Lookup(Embeddings):
    """Pre-computed embeddings: text "doc-<i>" maps to row i (keeps the embedder out of the timing)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        return [self.vectors[int(t[4:])] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("benchmark queries go by vector")


def _nodes(x: np.ndarray, start: int) -> list[TextNode]:
    return [TextNode(text=f"doc-{start + i}", id_=f"doc-{start + i}", embedding=v.tolist()) for i, v in enumerate(x)]


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _interleaved(searches: dict[str, Callable[[np.ndarray], object]], queries: np.ndarray,
                 rounds: int) -> dict[str, float]:
    """Mean ms per query for each store, best of ``rounds`` passes taken in turn (fair on a shared machine)."""
    best = {name: np.inf for name in searches}
    for search in searches.values():
        search(queries[0])  # warm-up
    for _ in range(rounds):
        for name, search in searches.items():
            t = time.perf_counter()
            for q in queries:
                search(q)
            best[name] = min(best[name], (time.perf_counter() - t) / len(queries) * 1e3)
    return best


def milvus_rows(x: np.ndarray, qs: np.ndarray, exact: faiss.IndexFlatL2) -> list[Row]:
    """Milvus Lite FLAT and HNSW rows, measured by ``benchmarks/milvus.py`` (recall against ``exact``)."""
    from milvus import measure_milvus, milvus_specs  # benchmarks/milvus.py, beside this script

    _, truth = exact.search(qs, K)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ragcun-search-bench-") as workdir:
        for name, spec in milvus_specs().items():
            add_s, build_s, lat, rec = measure_milvus(str(Path(workdir) / f"{name.lower()}.db"), spec, x, qs, truth, K)
            rows.append(Row(f"ragcun MilvusL2Index Lite {name}", add_s, build_s, float(lat.mean()), rec))
    return rows


def bench(n: int, n_queries: int, slow_queries: int, rounds: int, milvus: bool) -> list[Row]:
    """Every store's row for ``n`` vectors: the FAISS-based ones first (raw FAISS leads)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    qs = rng.standard_normal((n_queries, DIM), dtype=np.float32)
    ids = [f"doc-{i}" for i in range(n)]
    emb = Lookup(x)
    add: dict[str, float] = {}

    flat = faiss.IndexFlatL2(DIM)
    add["faiss.IndexFlatL2 (raw)"] = _time(lambda: flat.add(x))
    ours = L2Index(DIM)
    add["ragcun L2Index"] = _time(lambda: ours.add(ids, x))
    llama = LlamaStore()
    add["ragcun LlamaIndex store"] = _time(
        lambda: [llama.add(_nodes(x[s:s + CHUNK], s)) for s in range(0, n, CHUNK)])
    lc = LangChainStore(emb)
    add["ragcun LangChain store"] = _time(
        lambda: [lc.add_texts(ids[s:s + CHUNK], ids=ids[s:s + CHUNK]) for s in range(0, n, CHUNK)])
    fast = _interleaved({
        "faiss.IndexFlatL2 (raw)": lambda q: flat.search(q[None], K),
        "ragcun L2Index": lambda q: ours.search(q, K),
        "ragcun LlamaIndex store": lambda q: llama.query(VectorStoreQuery(query_embedding=q.tolist(),
                                                                         similarity_top_k=K)),
        "ragcun LangChain store": lambda q: lc.similarity_search_by_vector(q.tolist(), K),
    }, qs, rounds)
    rows = [Row(name, add[name], None, fast[name], None) for name in fast]
    hybrid_store = DocStore(L2Index(DIM))
    texts = corpus_texts(n)
    t_add = _time(lambda: [hybrid_store.add([Record(i, tx) for i, tx in zip(ids[s:s + CHUNK], texts[s:s + CHUNK])],
                                            x[s:s + CHUNK]) for s in range(0, n, CHUNK)])
    latency = search_latency(hybrid_store, qs, query_texts(len(qs)), rounds)
    rows += [Row(f"ragcun DocStore {mode} (real texts)", t_add, None, latency[mode], None) for mode in latency]
    del hybrid_store
    if milvus:
        rows += milvus_rows(x, qs, flat)
    del flat, ours, llama, lc
    gc.collect()

    simple = SimpleVectorStore()
    t_add = _time(lambda: [simple.add(_nodes(x[s:s + CHUNK], s)) for s in range(0, n, CHUNK)])
    lat = _interleaved({"s": lambda q: simple.query(VectorStoreQuery(query_embedding=q.tolist(),
                                                                     similarity_top_k=K))}, qs[:slow_queries], 1)
    rows.append(Row("LlamaIndex SimpleVectorStore", t_add, None, lat["s"], None))
    del simple
    gc.collect()

    mem = InMemoryVectorStore(emb)
    t_add = _time(lambda: [mem.add_documents([Document(page_content=t) for t in ids[s:s + CHUNK]],
                                             ids=ids[s:s + CHUNK]) for s in range(0, n, CHUNK)])
    lat = _interleaved({"m": lambda q: mem.similarity_search_by_vector(q.tolist(), K)}, qs[:slow_queries], 1)
    rows.append(Row("LangChain InMemoryVectorStore", t_add, None, lat["m"], None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="queries for the FAISS-based stores")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing passes (best is kept)")
    parser.add_argument("--threads", type=int, default=1,
                        help="FAISS OpenMP threads (1 avoids thread contention for single queries)")
    parser.add_argument("--slow-queries", type=int, default=10, help="queries for the pure-Python stores")
    parser.add_argument("--milvus", action=argparse.BooleanOptionalAction,
                        default=all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
                        help="also measure MilvusL2Index on Milvus Lite (default: when pymilvus is installed)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, {DIM}-d N(0, I) vectors, k={K}, single queries; faiss threads: "
          f"{faiss.omp_get_max_threads()}")
    for n in args.sizes:
        rows = bench(n, args.queries, args.slow_queries, args.rounds, args.milvus)
        raw = rows[0].ms_per_query
        ours = {r.name: r.ms_per_query for r in rows}
        print(f"\nN = {n:,}")
        print(f"{'store':34s} {'add s':>8s} {'build s':>8s} {'ms/query':>9s} {'recall@' + str(K):>10s} "
              f"{'vs raw FAISS':>13s} {'vs ragcun':>10s}")
        for r in rows:
            mine = ours["ragcun LlamaIndex store"] if "LlamaIndex" in r.name else (
                ours["ragcun LangChain store"] if "LangChain" in r.name else ours["ragcun L2Index"])
            build = "-" if r.build_s is None else f"{r.build_s:.2f}"
            rec = "-" if r.recall is None else f"{r.recall:.3f}"
            lat = r.ms_per_query
            print(f"{r.name:34s} {r.add_s:8.2f} {build:>8s} {lat:9.3f} {rec:>10s} "
                  f"{lat / raw:12.2f}x {lat / mine:9.2f}x")


if __name__ == "__main__":
    main()
