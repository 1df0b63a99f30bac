"""Milvus's native BM25 (``MilvusL2Index.lexical_search``) beside ``bm25s`` on SciFact: nDCG@10 and their ratio.

The SciFact corpus goes, with its texts, into a ``MilvusL2Index`` on a fresh Milvus Lite file
(default analysis: ragcun's English stems, see ``ragcun.index.milvus.text``) and, for comparison, into
one that leaves analysis to Milvus Lite's own analyzer (standard tokenizer and the same English
stopwords; Milvus Lite has no stemmer). The reference is ``bm25s`` (lucene BM25, k1 = 1.5,
b = 0.75, English stopwords and Snowball stemmer). Each test query's top 10 is scored with
nDCG@10. With ``--hybrid`` the bundled model's embeddings (cosine geometry, through ragcun's
embedding cache) go in as the vectors, and dense-only, Milvus's own ``hybrid_search`` with a
``WeightedRanker`` and ``DocStore``'s hybrid search (``ragcun.store.fusion``) on FAISS with ragcun's
BM25 and on ``MilvusL2Index`` with Milvus's BM25 are scored too. Feeds ``docs/scaling.md`` ("Lexical
(BM25) search in Milvus") and the README's hybrid paragraph. Run from the repository root::

    HF_HUB_OFFLINE=1 python -m benchmarks.milvus_lexical [--data ../shared/data/beir/scifact] [--hybrid]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from benchmarks.common import SCIFACT, print_table
from ragcun.index.faiss_l2 import L2Index
from ragcun.index.milvus.index import SPARSE_FIELD, VECTOR_FIELD, MilvusL2Index
from ragcun.index.milvus.text import english_terms
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import DEFAULT_ALPHA, DEFAULT_NORMALIZATION, resolve_weights
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_eval.metrics import ndcg_at_k

K = 10
DEPTH = 100  # candidates per side for the hybrid rankings
LITE_ANALYZER = {"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": sorted(STOPWORDS_EN)}]}


def mean_ndcg(data: BeirDataset, ranked: dict[str, Sequence[str]]) -> float:
    """Mean nDCG@10 over the test queries."""
    return float(np.mean([ndcg_at_k(list(ranked[q]), data.qrels[q], K) for q in data.queries]))


def bm25s_model(data: BeirDataset) -> tuple[bm25s.BM25, Callable[[str], list[str]]]:
    """``bm25s`` over the corpus and its query tokenizer (English stopwords and stemmer)."""
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25(k1=1.5, b=0.75)
    model.index(bm25s.tokenize(data.doc_texts, stopwords="en", stemmer=stemmer, show_progress=False),
                show_progress=False)

    def tokens(query: str) -> list[str]:
        return bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]

    return model, tokens


def bm25s_run(data: BeirDataset, model: bm25s.BM25, tokens: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """``bm25s``'s top 10 per query."""
    run = {}
    for q, text in data.queries.items():
        scores = model.get_scores(tokens(text))
        run[q] = [data.doc_ids[j] for j in np.argsort(-scores, kind="stable")[:K] if scores[j] > 0]
    return run


def fill(path: str, data: BeirDataset, vectors: np.ndarray, **options: object) -> tuple[MilvusL2Index, float]:
    """A ``MilvusL2Index`` on ``path`` holding the corpus (vectors, and texts if lexical), flushed; and the add seconds."""
    index = MilvusL2Index(path, dim=vectors.shape[1], **options)
    start = time.perf_counter()
    index.add(data.doc_ids, vectors, texts=data.doc_texts if index.capabilities.lexical else None)
    index.flush()
    return index, time.perf_counter() - start


def lexical_run(data: BeirDataset, index: MilvusL2Index) -> tuple[dict[str, list[str]], float]:
    """``lexical_search``'s top 10 per query, and the median ms per query."""
    run, ms = {}, []
    for q, text in data.queries.items():
        start = time.perf_counter()
        run[q] = index.lexical_search(text, K)[0]
        ms.append((time.perf_counter() - start) * 1e3)
    return run, float(np.median(ms))


def store_run(data: BeirDataset, store: DocStore, queries: np.ndarray, alpha: float | None) -> dict[str, list[str]]:
    """The top 10 per query of ``DocStore``'s hybrid search (ragcun's fusion, whatever the index)."""
    return {q: [h.record.id for h in store.search(qv, K, text=text, mode="hybrid", alpha=alpha, candidates=DEPTH)]
            for (q, text), qv in zip(data.queries.items(), queries)}


def hybrid_stores(data: BeirDataset, doc_vectors: np.ndarray, milvus_path: str) -> tuple[DocStore, DocStore]:
    """The corpus in a ``DocStore`` on FAISS (its own BM25) and one on Milvus Lite (Milvus's BM25)."""
    records = [Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)]
    stores = DocStore(L2Index()), DocStore(MilvusL2Index(milvus_path))
    for store in stores:
        store.add(records, doc_vectors)
    return stores


def milvus_hybrid_run(data: BeirDataset, index: MilvusL2Index, queries: np.ndarray, alpha: float) -> dict[str, list[str]]:
    """Milvus's own ``hybrid_search`` (L2 and BM25 requests, ``WeightedRanker(alpha, 1 - alpha)``)."""
    from pymilvus import AnnSearchRequest, WeightedRanker

    run = {}
    for (q, text), qv in zip(data.queries.items(), queries):
        requests = [AnnSearchRequest(data=[qv], anns_field=VECTOR_FIELD, param={"metric_type": "L2"}, limit=DEPTH),
                    AnnSearchRequest(data=[" ".join(english_terms(text)) or "-"], anns_field=SPARSE_FIELD,
                                     param={"metric_type": "BM25"}, limit=DEPTH)]
        hits = index._live.hybrid_search(index.collection, requests, WeightedRanker(alpha, 1 - alpha), limit=K,
                                         output_fields=["id"])
        run[q] = [h["id"] for h in hits[0]]
    return run


def embeddings(data: BeirDataset) -> tuple[np.ndarray, np.ndarray]:
    """The bundled model's cosine-geometry document and query vectors (through ragcun's embedding cache)."""
    from ragcun_eval.geometry import apply_geometry
    from ragcun_eval.models import Embedder, parse_model_spec

    spec, embedder = parse_model_spec("bundled"), Embedder()
    docs = embedder.embed(spec, data.doc_texts, "document")
    queries = embedder.embed(spec, list(data.queries.values()), "query")
    space = apply_geometry(spec.geometry, docs, queries)
    return space.docs.astype(np.float32), space.queries.astype(np.float32)


def main() -> None:
    """Print nDCG@10 of bm25s and Milvus's BM25 (and the hybrid rankings with ``--hybrid``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SCIFACT))
    parser.add_argument("--hybrid", action="store_true", help="also dense and hybrid rankings (bundled model)")
    parser.add_argument("--alpha", type=float, help=f"dense weight of the hybrid rankings (default: the stores' "
                                                    f"default, {DEFAULT_ALPHA} with {DEFAULT_NORMALIZATION})")
    args = parser.parse_args()
    data = load_beir(args.data)
    model, tokens = bm25s_model(data)
    reference = mean_ndcg(data, bm25s_run(data, model, tokens))
    rows: list[dict[str, object]] = [{"ranking": "bm25s (English stopwords + stemmer)", f"nDCG@{K}": reference,
                                      "ratio": "-", "add s": "-", "p50 ms/query": "-"}]
    doc_vectors, query_vectors = embeddings(data) if args.hybrid else (np.zeros((len(data.doc_ids), 2), np.float32), None)
    with tempfile.TemporaryDirectory() as tmp:
        index, add_s = fill(str(Path(tmp) / "stems.db"), data, doc_vectors)
        run, ms = lexical_run(data, index)
        ndcg = mean_ndcg(data, run)
        rows.append({"ranking": "MilvusL2Index.lexical_search (ragcun stems)", f"nDCG@{K}": ndcg,
                     "ratio": ndcg / reference, "add s": add_s, "p50 ms/query": ms})
        plain, plain_s = fill(str(Path(tmp) / "plain.db"), data, doc_vectors, lexical=False)
        plain.close()
        rows.append({"ranking": "(add without texts, lexical=False)", f"nDCG@{K}": "-", "ratio": "-",
                     "add s": plain_s, "p50 ms/query": "-"})
        with fill(str(Path(tmp) / "lite.db"), data, doc_vectors, analyzer_params=LITE_ANALYZER)[0] as lite:
            ndcg = mean_ndcg(data, lexical_run(data, lite)[0])
        rows.append({"ranking": "Milvus Lite analyzer (no stemmer)", f"nDCG@{K}": ndcg, "ratio": ndcg / reference,
                     "add s": "-", "p50 ms/query": "-"})
        if query_vectors is not None:
            ids, _ = index.search(query_vectors, K)
            rows.append({"ranking": "dense (bundled, cosine)", f"nDCG@{K}": mean_ndcg(data, dict(zip(data.queries, ids)))})
            faiss_store, milvus_store = hybrid_stores(data, doc_vectors, str(Path(tmp) / "store.db"))
            faiss_side = store_run(data, faiss_store, query_vectors, args.alpha)
            milvus_side = store_run(data, milvus_store, query_vectors, args.alpha)
            milvus_store.index.close()
            weight, normalization = resolve_weights(args.alpha, None, None)  # what the stores used
            native = milvus_hybrid_run(data, index, query_vectors, weight)
            theirs, ours = mean_ndcg(data, faiss_side), mean_ndcg(data, milvus_side)
            fusion = f"{normalization}, alpha={weight}"
            rows += [{"ranking": f"DocStore hybrid ({fusion}), FAISS + ragcun BM25", f"nDCG@{K}": theirs},
                     {"ranking": f"DocStore hybrid ({fusion}), MilvusL2Index", f"nDCG@{K}": ours,
                      "ratio": ours / theirs},
                     {"ranking": f"Milvus hybrid_search WeightedRanker({weight})",
                      f"nDCG@{K}": mean_ndcg(data, native)}]
        index.close()
    print_table(rows, f"{data.name}: {len(data.doc_ids)} documents, {len(data.queries)} test queries; ratio: "
                      "against bm25s (lexical rows) or FAISS + ragcun BM25 (hybrid rows)")


if __name__ == "__main__":
    main()
