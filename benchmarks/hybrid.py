"""Hybrid (L2 + BM25) retrieval: quality through the real frameworks, and its cost at scale.

Quality: BEIR SciFact test (300 queries, 5,183 documents), the bundled Gaussian model (identity
head: its L2 ranking is the base model's cosine ranking), nDCG@10 of dense and hybrid retrieval
through a LlamaIndex ``VectorStoreIndex`` retriever and a LangChain retriever over ragcun's stores
(document vectors from the shared embedding cache; queries embedded by the frameworks).

Cost: N documents (the real-text passages of ``benchmarks/real_corpus.py``: SciFact documents, titles
and sentences, NQ/SQuAD sentences and questions; repeated with a suffix past 103,508; random N(0, I) 384-d vectors, since latency
does not depend on what the vectors mean), one query at a time with SciFact query texts: mean ms
per query of dense and hybrid search in ``DocStore`` (exact FAISS), the time of ``L2Index.add`` and
of ``DocStore.add`` (which only queues texts for BM25), and of the first read after the adds (which
analyses and indexes every queued text as one segment).

Run: HF_HUB_OFFLINE=1 python benchmarks/hybrid.py [--sizes 10000 100000] [--no-quality]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import lru_cache

import faiss
import numpy as np
import real_corpus  # benchmarks/real_corpus.py, beside this script

from ragcun.index.faiss_l2 import L2Index
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import DEFAULT_ALPHA

SCIFACT = real_corpus.SCIFACT


def quality(alpha: float) -> None:
    """nDCG@10 of dense and hybrid retrieval on SciFact test through both frameworks."""
    import torch
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode

    from langchain_ragcun import GaussianEmbeddings
    from langchain_ragcun import GaussianVectorStore as LCStore
    from llama_index.embeddings.ragcun import GaussianEmbedding
    from llama_index.vector_stores.ragcun import GaussianVectorStore as LIStore
    from ragcun import EmbeddingCache, GaussianEncoder
    from ragcun_eval.beir import load_beir
    from ragcun_eval.metrics import evaluate

    data = load_beir(SCIFACT, "test")
    encoder = GaussianEncoder()
    with torch.no_grad():
        raw = EmbeddingCache(encoder).get(data.doc_texts, "document")
        vectors = encoder.apply_head(torch.as_tensor(raw)).numpy()
    li_store = LIStore(alpha=alpha)
    index = VectorStoreIndex([TextNode(id_=d, text=t, embedding=v.tolist())
                              for d, t, v in zip(data.doc_ids, data.doc_texts, vectors)],
                             storage_context=StorageContext.from_defaults(vector_store=li_store),
                             embed_model=GaussianEmbedding())
    db = LCStore(GaussianEmbeddings(), alpha=alpha)
    db.add_embeddings(zip(data.doc_texts, vectors.tolist()), ids=data.doc_ids)
    print(f"SciFact test: {len(data.queries)} queries, {len(data.doc_ids)} documents, alpha={alpha}")
    print(f"{'through':28s} {'dense nDCG@10':>14s} {'hybrid nDCG@10':>15s} {'gain':>7s}")
    for name in ("LlamaIndex VectorStoreIndex", "LangChain retriever"):
        ndcg = {}
        for mode in ("dense", "hybrid"):
            if name.startswith("LlamaIndex"):
                retriever = index.as_retriever(vector_store_query_mode=mode if mode == "hybrid" else "default",
                                               similarity_top_k=10, alpha=alpha if mode == "hybrid" else None)
                li_store.retrieval_mode = mode
                run = {q: [n.node.node_id for n in retriever.retrieve(t)] for q, t in data.queries.items()}
            else:
                retriever = db.as_retriever(search_kwargs={"k": 10, "retrieval_mode": mode})
                run = {q: [d.id for d in retriever.invoke(t)] for q, t in data.queries.items()}
            ndcg[mode] = evaluate(run, data.qrels)["ndcg@10"]
        print(f"{name:28s} {ndcg['dense']:14.4f} {ndcg['hybrid']:15.4f} {(ndcg['hybrid'] / ndcg['dense'] - 1) * 100:+6.1f}%")


@lru_cache(maxsize=1)
def passages() -> tuple[str, ...]:
    """The distinct real-text passages of ``benchmarks/real_corpus.py`` (built once)."""
    return tuple(real_corpus.build().texts)


def corpus_texts(n: int) -> list[str]:
    """``n`` real-text passages: :func:`passages`, repeated with a suffix past their count."""
    base = passages()
    return [base[i % len(base)] + ("" if i < len(base) else f" v{i // len(base)}") for i in range(n)]


def query_texts(n: int) -> list[str]:
    """The first ``n`` SciFact query texts."""
    return [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8")][:n]


def search_latency(store: DocStore, vectors: np.ndarray, texts: list[str], rounds: int) -> dict[str, float]:
    """Mean ms per query of dense and hybrid ``DocStore.search`` (best of ``rounds``, modes in turn)."""
    best = {"dense": np.inf, "hybrid": np.inf}
    for mode in best:  # warm-up: the first search fits the store's distance law
        store.search(vectors[0], 10, text=texts[0], mode=mode)
    for _ in range(rounds):
        for mode in best:
            t = time.perf_counter()
            for q, text in zip(vectors, texts):
                store.search(q, 10, text=text, mode=mode, alpha=DEFAULT_ALPHA)
            best[mode] = min(best[mode], (time.perf_counter() - t) / len(texts) * 1e3)
    return best


def cost(sizes: list[int], n_queries: int, rounds: int) -> None:
    """Add time and per-query latency of dense vs hybrid search at each size."""
    queries = query_texts(n_queries)
    rng = np.random.default_rng(0)
    print(f"\n{len(passages()):,} distinct passages; {len(queries)} query texts; exact FAISS, 384-d, k=10, "
          f"faiss threads {faiss.omp_get_max_threads()}")
    print(f"{'N':>8s} {'L2Index.add s':>14s} {'DocStore.add s':>15s} {'1st read s':>11s} {'dense ms/q':>11s} "
          f"{'hybrid ms/q':>12s} {'hybrid/dense':>13s}")
    for n in sizes:
        texts = corpus_texts(n)
        ids = [f"d{i}" for i in range(n)]
        x = rng.standard_normal((n, 384), dtype=np.float32)
        qs = rng.standard_normal((len(queries), 384), dtype=np.float32)
        t = time.perf_counter()
        L2Index(384).add(ids, x)
        add_vectors = time.perf_counter() - t
        store = DocStore(L2Index(384), lexical=BM25Index())
        t = time.perf_counter()
        for s in range(0, n, 10_000):
            store.add([Record(i, tx) for i, tx in zip(ids[s:s + 10_000], texts[s:s + 10_000])], x[s:s + 10_000])
        add_all = time.perf_counter() - t
        t = time.perf_counter()
        store.search(qs[0], 10, text=queries[0], mode="hybrid")  # indexes the texts the adds queued
        first = time.perf_counter() - t
        best = search_latency(store, qs, queries, rounds)
        print(f"{n:8,d} {add_vectors:14.2f} {add_all:15.2f} {first:11.2f} {best['dense']:11.2f} "
              f"{best['hybrid']:12.2f} {best['hybrid'] / best['dense']:12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timing passes, dense and hybrid in turn (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True,
                        help="measure SciFact nDCG@10 through the frameworks (encodes SciFact once if not cached)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    if args.quality:
        quality(args.alpha)
    cost(args.sizes, args.queries, args.rounds)


if __name__ == "__main__":
    main()
