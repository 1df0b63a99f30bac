"""Query cost of ragcun's stores against raw FAISS: the architecture's two latency targets, and what else is cheap to add.

Feeds the README's "Scaling out" section (the search-latency paragraph) and ``docs/scaling.md``.

1. Framework overhead: a plain dense query (pre-embedded vector, k = 10, one query per call) through
   LlamaIndex ``GaussianVectorStore.query`` (a ``VectorStoreQuery``) and LangChain
   ``GaussianVectorStore.similarity_search_by_vector``, against ``faiss.IndexFlatL2.search`` on the same
   random N(0, I) 384-d vectors (``--n-dense``, 50,000 by default). The stores hold an exact
   ``L2Index`` (FAISS ``IndexFlatL2`` too), so both sides run the same exact search and the ratio is
   the stores' own cost. Target: ratio <= 1.05. ``ragcun.L2Index`` alone and, for scale, the
   frameworks' default stores (LlamaIndex ``SimpleVectorStore``, LangChain ``InMemoryVectorStore``;
   pure Python, timed on ``--slow-queries`` queries) and Milvus Lite FLAT / HNSW (``benchmarks.milvus``;
   when pymilvus is installed) are measured beside them, with recall@10 against exact FAISS.
2. Hybrid overhead: a hybrid (L2 + BM25) query against a dense one through ``DocStore`` (exact
   ``L2Index``, BM25 on) holding ``--n-hybrid`` real-text passages (100,000 by default; the corpus of
   ``benchmarks.real_corpus``, random vectors: latency does not depend on what they mean), queried
   with SciFact query texts, measured by ``benchmarks.hybrid.dense_vs_hybrid``. Target: ratio <= 1.20.

Every timing is interleaved (the compared passes take turns, best of ``--rounds``; medians printed
too); FAISS runs on ``--threads`` OpenMP threads (1: single queries gain nothing from more). The last
two lines give the ratios against their targets. Figures depend on the machine and its load: compare
ratios within one run.

Run from the repository root: ``python -m benchmarks.search [--quick]`` (``--quick``: 5,000 vectors
and passages, 50 queries, no Milvus; a smoke test).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import VectorStoreQuery

from benchmarks.common import interleaved, print_table, recall_at_k, seconds
from benchmarks.hybrid import dense_vs_hybrid
from langchain_ragcun import GaussianVectorStore as LangChainStore
from llama_index.vector_stores.ragcun import GaussianVectorStore as LlamaStore
from ragcun.index.faiss_l2 import L2Index

DIM, K, CHUNK = 384, 10, 10_000
RAW = "faiss.IndexFlatL2 (raw)"
LLAMA, LANGCHAIN = "ragcun LlamaIndex store", "ragcun LangChain store"
DENSE_TARGET, HYBRID_TARGET = 1.05, 1.20


class Lookup(Embeddings):
    """Pre-computed embeddings: text "doc-<i>" maps to row i (keeps the embedder out of the timing)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Row ``i`` for each text ``"doc-<i>"``."""
        return [self.vectors[int(t[4:])].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Not used: the benchmark's queries go by vector."""
        raise NotImplementedError("benchmark queries go by vector")


def _nodes(x: np.ndarray, start: int) -> list[TextNode]:
    return [TextNode(text=f"doc-{start + i}", id_=f"doc-{start + i}", embedding=v.tolist()) for i, v in enumerate(x)]


def _chunks(n: int) -> range:
    return range(0, n, CHUNK)


def _row(name: str, add_s: float, timing_ms: tuple[float, float], raw_ms: float, recall: float | None,
         build_s: float | None = None) -> dict[str, object]:
    best, median = timing_ms
    return {"store": name, "add s": add_s, "build s": "-" if build_s is None else build_s, "ms/query": best,
            "median ms/query": median, "vs raw FAISS": best / raw_ms, f"recall@{K}": "-" if recall is None else recall}


def dense(n: int, n_queries: int, rounds: int, slow_queries: int, milvus: bool) -> tuple[list[dict], dict[str, float]]:
    """Table rows of the dense comparison at ``n`` vectors, and each framework store's ratio to raw FAISS."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    qs = rng.standard_normal((n_queries, DIM), dtype=np.float32)
    flat = faiss.IndexFlatL2(DIM)
    add_raw = seconds(lambda: flat.add(x))
    rows, ratios = ragcun_rows(x, qs, flat, add_raw, rounds)  # the stores are freed when it returns
    raw_ms = rows[0]["ms/query"]
    if milvus:
        rows += milvus_rows(x, qs, flat, raw_ms)
    gc.collect()
    q_lists = qs[:slow_queries].tolist()
    rows += [simple_vector_store_row(x, q_lists, raw_ms), in_memory_vector_store_row(x, q_lists, raw_ms)]
    return rows, ratios


def ragcun_rows(x: np.ndarray, qs: np.ndarray, flat: faiss.IndexFlatL2, add_raw: float,
                rounds: int) -> tuple[list[dict], dict[str, float]]:
    """Raw FAISS (``flat``, holding ``x``), ``L2Index`` and both framework stores on exact FAISS, timed in turn."""
    n, n_queries = len(x), len(qs)
    q_lists = qs.tolist()  # what a framework's embedding model hands its store
    ids = [f"doc-{i}" for i in range(n)]
    ours, llama, lc = L2Index(DIM), LlamaStore(L2Index(DIM)), LangChainStore(Lookup(x), L2Index(DIM))
    add = {RAW: add_raw,
           "ragcun L2Index": seconds(lambda: ours.add(ids, x)),
           LLAMA: seconds(lambda: [llama.add(_nodes(x[s:s + CHUNK], s)) for s in _chunks(n)]),
           LANGCHAIN: seconds(lambda: [lc.add_texts(ids[s:s + CHUNK], ids=ids[s:s + CHUNK]) for s in _chunks(n)])}
    llama_queries = [VectorStoreQuery(query_embedding=q, similarity_top_k=K) for q in q_lists]
    searches: dict[str, Callable[[int], Any]] = {  # what is timed: the call alone
        RAW: lambda i: flat.search(qs[i:i + 1], K),
        "ragcun L2Index": lambda i: ours.search(qs[i:i + 1], K),
        LLAMA: lambda i: llama.query(llama_queries[i]),
        LANGCHAIN: lambda i: lc.similarity_search_by_vector(q_lists[i], K),
    }
    found: dict[str, Callable[[Any], list[str]]] = {  # each call's result as ids, for recall
        RAW: lambda r: [ids[j] for j in r[1][0]],
        "ragcun L2Index": lambda r: list(r[0][0]),
        LLAMA: lambda r: list(r.ids or []),
        LANGCHAIN: lambda r: [d.id for d in r],
    }
    results = {name: [found[name](search(i)) for i in range(n_queries)] for name, search in searches.items()}
    recall = {name: recall_at_k(got, results[RAW]) for name, got in results.items()}
    timing = interleaved({name: (lambda search=search: [search(i) for i in range(n_queries)])
                          for name, search in searches.items()}, rounds, items=n_queries)
    raw_ms = timing[RAW].best_ms
    rows = [_row(name, add[name], (t.best_ms, t.median_ms), raw_ms, recall[name]) for name, t in timing.items()]
    return rows, {name: timing[name].best / timing[RAW].best for name in (LLAMA, LANGCHAIN)}


def simple_vector_store_row(x: np.ndarray, q_lists: list[list[float]], raw_ms: float) -> dict[str, object]:
    """LlamaIndex's default in-memory store (pure Python: one timed pass over ``q_lists``)."""
    store = SimpleVectorStore()
    add_s = seconds(lambda: [store.add(_nodes(x[s:s + CHUNK], s)) for s in _chunks(len(x))])
    t = interleaved({"s": lambda: [store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=K))
                                   for q in q_lists]}, 1, items=len(q_lists))["s"]
    return _row("LlamaIndex SimpleVectorStore", add_s, (t.best_ms, t.median_ms), raw_ms, None)


def in_memory_vector_store_row(x: np.ndarray, q_lists: list[list[float]], raw_ms: float) -> dict[str, object]:
    """LangChain's default in-memory store (pure Python: one timed pass over ``q_lists``)."""
    ids = [f"doc-{i}" for i in range(len(x))]
    store = InMemoryVectorStore(Lookup(x))
    add_s = seconds(lambda: [store.add_documents([Document(page_content=t) for t in ids[s:s + CHUNK]],
                                                 ids=ids[s:s + CHUNK]) for s in _chunks(len(x))])
    t = interleaved({"m": lambda: [store.similarity_search_by_vector(q, K) for q in q_lists]}, 1,
                    items=len(q_lists))["m"]
    return _row("LangChain InMemoryVectorStore", add_s, (t.best_ms, t.median_ms), raw_ms, None)


def milvus_rows(x: np.ndarray, qs: np.ndarray, exact: faiss.IndexFlatL2, raw_ms: float) -> list[dict]:
    """Milvus Lite FLAT and HNSW rows, measured by ``benchmarks.milvus`` (recall against ``exact``)."""
    from benchmarks.milvus import measure_milvus, milvus_specs

    _, truth = exact.search(qs, K)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ragcun-search-bench-") as workdir:
        for name, spec in milvus_specs().items():
            add_s, build_s, lat, rec = measure_milvus(str(Path(workdir) / f"{name.lower()}.db"), spec, x, qs, truth, K)
            rows.append(_row(f"ragcun MilvusL2Index Lite {name}", add_s, (float(lat.mean()), float(np.median(lat))),
                             raw_ms, rec, build_s))
    return rows


def main() -> None:
    """Parse the flags, run both comparisons, print their tables and the two ratios against their targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dense", type=int, default=50_000, help="vectors for the framework-vs-FAISS comparison")
    parser.add_argument("--n-hybrid", type=int, default=100_000, help="real-text passages for hybrid vs dense")
    parser.add_argument("--queries", type=int, default=200, help="queries per timed pass")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing passes (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads")
    parser.add_argument("--slow-queries", type=int, default=10, help="queries for the pure-Python default stores")
    parser.add_argument("--milvus", action=argparse.BooleanOptionalAction,
                        default=all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
                        help="also measure MilvusL2Index on Milvus Lite (default: when pymilvus is installed)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 5,000 vectors and passages, 50 queries, 3 rounds, no Milvus")
    args = parser.parse_args()
    if args.quick:
        args.n_dense = args.n_hybrid = 5_000
        args.queries, args.rounds, args.milvus = 50, 3, False
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, {DIM}-d vectors, k={K}, single queries, faiss threads "
          f"{faiss.omp_get_max_threads()}, {args.queries} queries, best of {args.rounds} interleaved rounds")

    rows, ratios = dense(args.n_dense, args.queries, args.rounds, args.slow_queries, args.milvus)
    print_table(rows, f"Dense queries, {args.n_dense:,} random N(0, I) vectors (exact FAISS in every ragcun store)")
    cost = dense_vs_hybrid(args.n_hybrid, args.queries, args.rounds)
    print_table([cost], f"Hybrid vs dense through DocStore, {args.n_hybrid:,} real-text passages (exact FAISS)")
    print()
    print(f"framework/FAISS ratio: LlamaIndex {ratios[LLAMA]:.3f}, LangChain {ratios[LANGCHAIN]:.3f} "
          f"(target <= {DENSE_TARGET:.2f}, n={args.n_dense})")
    print(f"hybrid/dense ratio: {cost['hybrid/dense']:.3f} (target <= {HYBRID_TARGET:.2f}, n={args.n_hybrid})")


if __name__ == "__main__":
    main()
