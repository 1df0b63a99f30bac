"""Hybrid (L2 + BM25) retrieval: quality through the real frameworks, and its cost at scale.

Feeds the README's "Use it from LlamaIndex or LangChain" section (hybrid quality and cost paragraphs).

Quality: BEIR SciFact test (300 queries, 5,183 documents), the bundled Gaussian model (identity
head: its L2 ranking is the base model's cosine ranking), nDCG@10 of dense and hybrid retrieval
through a LlamaIndex ``VectorStoreIndex`` retriever and a LangChain retriever over ragcun's stores
(document vectors from the shared embedding cache; queries embedded by the frameworks).

Cost: N documents (the real-text passages of ``benchmarks.real_corpus``: SciFact documents, titles
and sentences, NQ/SQuAD sentences and questions, repeated with a suffix past their count; random
N(0, I) 384-d vectors, since latency does not depend on what the vectors mean), one query at a time
with SciFact query texts: mean ms per query of dense and hybrid search in ``DocStore`` (exact FAISS,
the two modes timed in turn, best of ``--rounds``), the time of ``L2Index.add`` and
of ``DocStore.add`` (which only queues texts for BM25), and of the first read after the adds (which
analyses and indexes every queued text as one segment).

Run from the repository root: HF_HUB_OFFLINE=1 python -m benchmarks.hybrid [--sizes 10000 100000] [--no-quality]
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache

import faiss
import numpy as np

from benchmarks import real_corpus
from benchmarks.common import SCIFACT, interleaved, print_table, seconds
from ragcun.index.faiss_l2 import L2Index
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import DEFAULT_ALPHA


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
    rows = []
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
        rows.append({"through": name, "dense nDCG@10": ndcg["dense"], "hybrid nDCG@10": ndcg["hybrid"],
                     "gain %": (ndcg["hybrid"] / ndcg["dense"] - 1) * 100})
    print_table(rows, f"SciFact test: {len(data.queries)} queries, {len(data.doc_ids)} documents, alpha={alpha}")


@lru_cache(maxsize=1)
def passages() -> tuple[str, ...]:
    """The distinct real-text passages of ``benchmarks.real_corpus`` (built once)."""
    return tuple(real_corpus.build().texts)


def corpus_texts(n: int) -> list[str]:
    """``n`` real-text passages: :func:`passages`, repeated with a suffix past their count."""
    base = passages()
    return [base[i % len(base)] + ("" if i < len(base) else f" v{i // len(base)}") for i in range(n)]


def query_texts(n: int) -> list[str]:
    """The first ``n`` SciFact query texts."""
    return [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8")][:n]


def dense_vs_hybrid(n: int, n_queries: int, rounds: int, alpha: float = DEFAULT_ALPHA) -> dict[str, object]:
    """One row: add times and interleaved dense vs hybrid ``DocStore.search`` latency at ``n`` passages.

    Random N(0, I) 384-d vectors (latency does not depend on what they mean), exact ``L2Index``, BM25
    on, the first ``n_queries`` SciFact query texts; ``hybrid/dense`` is the ratio of the best rounds.
    """
    queries = query_texts(n_queries)
    rng = np.random.default_rng(0)
    texts = corpus_texts(n)
    ids = [f"d{i}" for i in range(n)]
    x = rng.standard_normal((n, 384), dtype=np.float32)
    qs = rng.standard_normal((len(queries), 384), dtype=np.float32)
    add_vectors = seconds(lambda: L2Index(384).add(ids, x))
    store = DocStore(L2Index(384), lexical=BM25Index())
    add_all = seconds(lambda: [store.add([Record(i, t) for i, t in zip(ids[s:s + 10_000], texts[s:s + 10_000])],
                                         x[s:s + 10_000]) for s in range(0, n, 10_000)])
    first = seconds(lambda: store.search(qs[0], 10, text=queries[0], mode="hybrid"))  # indexes the queued texts
    timing = interleaved({mode: (lambda mode=mode: [store.search(q, 10, text=t, mode=mode, alpha=alpha)
                                                    for q, t in zip(qs, queries)])
                          for mode in ("dense", "hybrid")}, rounds, items=len(queries))
    return {"N": n, "L2Index.add s": add_vectors, "DocStore.add s": add_all, "1st read s": first,
            "dense ms/q": timing["dense"].best_ms, "hybrid ms/q": timing["hybrid"].best_ms,
            "hybrid/dense": timing["hybrid"].best / timing["dense"].best}


def cost(sizes: list[int], n_queries: int, rounds: int, alpha: float) -> None:
    """Add time and per-query latency of dense vs hybrid search at each size."""
    print_table([dense_vs_hybrid(n, n_queries, rounds, alpha) for n in sizes],
                f"{len(passages()):,} distinct passages; {n_queries} SciFact query texts; exact FAISS, 384-d, k=10, "
                f"faiss threads {faiss.omp_get_max_threads()}, best of {rounds} interleaved rounds")


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
    cost(args.sizes, args.queries, args.rounds, args.alpha)


if __name__ == "__main__":
    main()
