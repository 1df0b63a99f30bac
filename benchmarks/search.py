"""Add time and per-query latency: ragcun's stores vs raw FAISS and the frameworks' default stores.

Random N(0, I) 384-d vectors, k = 10, one query at a time (queries are pre-embedded, so only the
store is timed). Run: python benchmarks/search.py [--sizes 10000 100000] [--queries 200]
Figures depend on the machine and its load; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Callable

import faiss
import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import VectorStoreQuery

from langchain_ragcun import GaussianVectorStore as LangChainStore
from llama_index.vector_stores.ragcun import GaussianVectorStore as LlamaStore
from ragcun.l2_index import L2Index

DIM, K, CHUNK = 384, 10, 10_000


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


def bench(n: int, n_queries: int, slow_queries: int, rounds: int) -> list[tuple[str, float, float]]:
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
    rows = [(name, add[name], fast[name]) for name in fast]
    del flat, ours, llama, lc
    gc.collect()

    simple = SimpleVectorStore()
    t_add = _time(lambda: [simple.add(_nodes(x[s:s + CHUNK], s)) for s in range(0, n, CHUNK)])
    lat = _interleaved({"s": lambda q: simple.query(VectorStoreQuery(query_embedding=q.tolist(),
                                                                     similarity_top_k=K))}, qs[:slow_queries], 1)
    rows.append(("LlamaIndex SimpleVectorStore", t_add, lat["s"]))
    del simple
    gc.collect()

    mem = InMemoryVectorStore(emb)
    t_add = _time(lambda: [mem.add_documents([Document(page_content=t) for t in ids[s:s + CHUNK]],
                                             ids=ids[s:s + CHUNK]) for s in range(0, n, CHUNK)])
    lat = _interleaved({"m": lambda q: mem.similarity_search_by_vector(q.tolist(), K)}, qs[:slow_queries], 1)
    rows.append(("LangChain InMemoryVectorStore", t_add, lat["m"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="queries for the FAISS-based stores")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing passes (best is kept)")
    parser.add_argument("--threads", type=int, default=1,
                        help="FAISS OpenMP threads (1 avoids thread contention for single queries)")
    parser.add_argument("--slow-queries", type=int, default=10, help="queries for the pure-Python stores")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, {DIM}-d N(0, I) vectors, k={K}, single queries; faiss threads: "
          f"{faiss.omp_get_max_threads()}")
    for n in args.sizes:
        rows = bench(n, args.queries, args.slow_queries, args.rounds)
        raw = rows[0][2]
        ours = {name: lat for name, _, lat in rows}
        print(f"\nN = {n:,}")
        print(f"{'store':32s} {'add s':>8s} {'ms/query':>9s} {'vs raw FAISS':>13s} {'vs ragcun':>10s}")
        for name, add, lat in rows:
            mine = ours["ragcun LlamaIndex store"] if "LlamaIndex" in name else (
                ours["ragcun LangChain store"] if "LangChain" in name else ours["ragcun L2Index"])
            print(f"{name:32s} {add:8.2f} {lat:9.3f} {lat / raw:12.2f}x {lat / mine:9.2f}x")


if __name__ == "__main__":
    main()
