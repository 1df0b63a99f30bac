"""When does an approximate index pay? recall@10 against exact search and per-query speed-up.

Default mode: HNSW32 (efSearch sweep) and IVF (nprobe sweep) through ``ragcun.L2Index``, on random
N(0, I) 384-d vectors and on real embeddings: the BEIR SciFact corpus through the bundled base model
and through its Gaussian head (queries: SciFact's queries). Single queries, FAISS on one thread.

``--real``: the >= 100k-passage real-text corpus of ``benchmarks.real_corpus`` (every SciFact document
plus titles, sentences and questions as distractors; vectors from the shared embedding cache) and
SciFact's test queries. Exact vs HNSW (M, efSearch), IVF-Flat (nprobe), IVF-SQ8 and IVF-PQ with
exact re-ranking (``RFlat``, k_factor 8) on two geometries: the bundled model's unit vectors (its
cosine ranking) and a whitening Gaussian head fitted on the corpus (mean 0, covariance I: the
isotropic extreme a Gaussian model aims at; the bundled identity head is the unit vectors centred
and scaled, which no L2 index can tell apart from them). Per index: recall@10 against exact;
SciFact test nDCG@10 among the distractors, two ways (``nDCG@10``: only whole SciFact documents are
relevant, so their own sentences and titles are distractors too; ``doc-nDCG``: each passage is
scored as the document it was cut from, as a RAG system citing its sources would be); ms/query one
query at a time and in one batch (FAISS on one thread); build time (FAISS on all threads); bytes per
vector (the serialised FAISS index / N). Then ``DocStore`` dense and hybrid search on the same
corpus, exact and with ``DocStore()``'s default index (``L2Index(factory="auto")``). Last line:
``ann-real: n=… default=… recall@10=… speedup=…x ndcg_ratio=…`` for that default, against exact.

Feeds the README's "Scaling out" section (exact below 50k, HNSW above) and ``docs/scaling.md``
("Measured on real text at 100k"). Run from the repository root:

    python -m benchmarks.ann [--n 100000] [--skip-scifact]
    HF_HUB_OFFLINE=1 python -m benchmarks.ann --real [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import faiss
import numpy as np

from benchmarks import real_corpus
from benchmarks.common import SCIFACT, print_table, recall_at_k, seconds
from ragcun.index.faiss_l2 import L2Index

K = 10


def _per_query_ms(index: L2Index, queries: np.ndarray) -> tuple[float, list[list[str | None]]]:
    index.search(queries[0], K)
    found: list[list[str | None]] = []
    t = time.perf_counter()
    for q in queries:
        found.append(index.search(q, K)[0][0])
    return (time.perf_counter() - t) / len(queries) * 1e3, found


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
    rows: list[dict[str, object]] = [{"index": "Flat (exact)", "param": "-", "build s": "-", "recall@10": 1.0,
                                      "ms/query": flat_ms, "speed-up": 1.0}]
    hnsw = L2Index(x.shape[1], "HNSW32")
    build_s = seconds(lambda: hnsw.add(ids, x))
    for ef in (16, 32, 64, 128, 256, 512):
        hnsw.set_search_params(ef_search=ef)
        ms, found = _per_query_ms(hnsw, queries)
        rows.append({"index": "HNSW32", "param": f"efSearch={ef}", "build s": build_s,
                     "recall@10": recall_at_k(found, exact), "ms/query": ms, "speed-up": flat_ms / ms})
    nlist = int(4 * np.sqrt(n))
    ivf = L2Index(x.shape[1], f"IVF{nlist},Flat", train_size=min(n, 40 * nlist))
    build_s = seconds(lambda: ivf.add(ids, x))  # training included
    for nprobe in (1, 4, 16, 64, 256):
        if nprobe > nlist:
            break
        ivf.set_search_params(nprobe=nprobe)
        ms, found = _per_query_ms(ivf, queries)
        rows.append({"index": f"IVF{nlist},Flat", "param": f"nprobe={nprobe}", "build s": build_s,
                     "recall@10": recall_at_k(found, exact), "ms/query": ms, "speed-up": flat_ms / ms})
    print_table(rows, f"{name}: {n:,} vectors, {x.shape[1]}-d, {len(queries)} queries")


def scifact(limit_queries: int) -> tuple[list[str], list[str]]:
    with (SCIFACT / "corpus.jsonl").open() as fh:
        docs = [json.loads(line) for line in fh]
    with (SCIFACT / "queries.jsonl").open() as fh:
        queries = [json.loads(line)["text"] for line in fh][:limit_queries]
    return [f"{d['title']} {d['text']}".strip() for d in docs], queries


# -- --real: the >= 100k real-passage corpus ------------------------------------------------------

REAL_SWEEPS: dict[str, tuple[str, list[int]]] = {  # factory -> (search parameter, values swept)
    "HNSW16": ("ef_search", [64, 128, 256]),
    "HNSW32": ("ef_search", [32, 64, 128, 256]),
    "IVF1024,Flat": ("nprobe", [8, 16, 32, 64]),
    "IVF1024,SQ8": ("nprobe", [16, 32, 64]),
    "IVF1024,PQ32,RFlat": ("nprobe", [16, 32, 64]),
}
QUICK_SWEEPS = {"HNSW32": ("ef_search", [64, 128, 256]), "IVF1024,Flat": ("nprobe", [16, 32, 64])}
REFINE_K_FACTOR = 8
ROUNDS = 2


@dataclass
class Row:
    """One measured index setting."""

    index: str
    param: str
    recall: float
    ndcg: float
    ndcg_doc: float
    ms: float
    batch_ms: float
    build_s: float
    bytes_per_vector: float


def _bytes_per_vector(index: L2Index) -> float:
    return len(faiss.serialize_index(index._index)) / max(index.count, 1)


def _tune(index: L2Index, param: str, value: int) -> None:
    index.set_search_params(**{param: value})
    inner = faiss.downcast_index(index._index.index)
    if isinstance(inner, faiss.IndexRefine):  # re-rank REFINE_K_FACTOR * k candidates exactly
        inner.k_factor = REFINE_K_FACTOR


def _measure(index: L2Index, name: str, param: str, build_s: float, q: np.ndarray, exact: list[list[str | None]],
             ndcg) -> Row:
    """One row: single-query and batched timings are the best of ``ROUNDS`` passes (the CPU is shared)."""
    ms, batch_ms = np.inf, np.inf
    for _ in range(ROUNDS):
        one, found = _per_query_ms(index, q)
        t = time.perf_counter()
        index.search(q, K)
        ms, batch_ms = min(ms, one), min(batch_ms, (time.perf_counter() - t) / len(q) * 1e3)
    return Row(name, param, recall_at_k(found, exact), *ndcg(found), ms, batch_ms, build_s, _bytes_per_vector(index))


def _cells(r: Row, exact_ms: float) -> dict[str, object]:
    """``r`` as a table row, its speed-up against ``exact_ms``."""
    return {"index": r.index, "param": r.param, "recall@10": r.recall, "nDCG@10": r.ndcg, "doc-nDCG": r.ndcg_doc,
            "ms/q": r.ms, "speed-up": exact_ms / r.ms, "batch ms/q": r.batch_ms, "build s": r.build_s,
            "B/vector": r.bytes_per_vector}


def real_sweep(name: str, ids: list[str], x: np.ndarray, q: np.ndarray, ndcg,
               sweeps: dict) -> tuple[list[Row], list[list[str | None]]]:
    """Exact then every index of ``sweeps`` on ``x``: one table; returns its rows (the exact one first) and
    the exact top 10s."""
    title = (f"{name}: {len(x):,} vectors, {x.shape[1]}-d, {len(q)} queries (search: 1 FAISS thread; "
             f"build: {faiss.omp_get_max_threads()})")
    rows = []
    flat = L2Index(x.shape[1])
    t = time.perf_counter()
    flat.add(ids, x)
    build = time.perf_counter() - t
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    exact = flat.search(q, K)[0]
    rows.append(_measure(flat, "Flat (exact)", "-", build, q, exact, ndcg))
    faiss.omp_set_num_threads(threads)
    for factory, (param, values) in sweeps.items():
        index = L2Index(x.shape[1], factory, **{param: values[0]})
        t = time.perf_counter()
        index.add(ids, x)
        build = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        for v in values:
            _tune(index, param, v)
            rows.append(_measure(index, factory, f"{'efSearch' if param == 'ef_search' else 'nprobe'}={v}",
                                 build, q, exact, ndcg))
        faiss.omp_set_num_threads(threads)
        del index
    print_table([_cells(r, rows[0].ms) for r in rows], title)
    return rows, exact


def real(quick: bool) -> None:
    """The ``--real`` benchmark (see the module docstring)."""
    import torch

    from ragcun import GaussianEncoder
    from ragcun.index.faiss_l2 import (
        AUTO_EF_SEARCH,
        AUTO_FACTORY,
        AUTO_NPROBE,
        AUTO_THRESHOLD,
    )
    from ragcun.store.fusion import DEFAULT_ALPHA
    from ragcun_eval.beir import load_beir
    from ragcun_eval.metrics import evaluate

    if not real_corpus.available():
        raise SystemExit(f"shared data not found under {real_corpus.SHARED}")
    corpus = real_corpus.build()
    data = load_beir(SCIFACT, "test")
    qids = list(data.queries)
    qtexts = [data.queries[i] for i in qids]
    print(f"corpus: {len(corpus.texts):,} passages ({', '.join(f'{k} {v:,}' for k, v in corpus.counts().items())}); "
          f"SciFact test: {len(qids)} queries")
    base = real_corpus.embed(corpus.texts)
    base_q = real_corpus.embed(qtexts, "query")
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    unit_q = base_q / np.linalg.norm(base_q, axis=1, keepdims=True)

    def ndcg(found: list[list[str | None]]) -> tuple[float, float]:
        """nDCG@10 with only whole SciFact documents relevant, and with each passage scored as its document."""
        strict = evaluate({q: [d for d in f if d is not None] for q, f in zip(qids, found)}, data.qrels)
        parents = {q: list(dict.fromkeys(d.split(":")[1] if d.startswith("sf:") else d for d in f if d is not None))
                   for q, f in zip(qids, found)}
        return strict["ndcg@10"], evaluate(parents, data.qrels)["ndcg@10"]

    sweeps = QUICK_SWEEPS if quick else REAL_SWEEPS
    rows, exact_found = real_sweep("bundled model, unit vectors (cosine ranking)", corpus.ids, unit, unit_q, ndcg,
                                   sweeps)
    if not quick:
        encoder = GaussianEncoder(init="whitening").fit_whitening(unit)
        with torch.no_grad():
            white, white_q = (encoder.apply_head(torch.from_numpy(a)).numpy().astype(np.float32) for a in (unit, unit_q))
        real_sweep("whitening Gaussian head fitted on the corpus (isotropic)", corpus.ids, white, white_q, ndcg,
                   {k: v for k, v in sweeps.items() if k.startswith(("HNSW32", "IVF1024,Flat"))})
    default = hybrid(corpus, unit, unit_q, qtexts, ndcg, DEFAULT_ALPHA, exact_found)
    exact = rows[0]
    print_table([_cells(default, exact.ms)],
                f"default for big stores: DocStore() = L2Index(factory=\"auto\"): exact below {AUTO_THRESHOLD:,} "
                f"vectors, {AUTO_FACTORY} (efSearch {AUTO_EF_SEARCH}, nprobe {AUTO_NPROBE}) above")
    print(f"ann-real: n={len(corpus.ids)} default={default.index} recall@10={default.recall:.3f} "
          f"speedup={exact.ms / default.ms:.1f}x ndcg_ratio={default.ndcg / exact.ndcg:.4f}")


def hybrid(corpus, x: np.ndarray, q: np.ndarray, qtexts: list[str], ndcg, alpha: float,
           exact_found: list[list[str | None]]) -> Row:
    """Dense and hybrid ``DocStore.search`` on the corpus, exact (``Flat``) and ``DocStore()``'s default index;
    returns the default index's row, measured like the sweeps' (``exact_found``: the exact top 10s)."""
    from ragcun.store.doc_store import DocStore, Record

    rows: list[dict[str, object]] = []
    records = [Record(i, t) for i, t in zip(corpus.ids, corpus.texts)]
    for name, index in (("Flat (exact)", L2Index()), ("DocStore() default", None)):
        store = DocStore(index)
        t = time.perf_counter()
        store.add(records, x)
        add_s = time.perf_counter() - t
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        if index is None:
            auto = store.index
            label = f"auto:{auto.target_factory if auto.approximate else 'Flat'}"
            param = f"efSearch={auto.ef_search}" if "HNSW" in label else f"nprobe={auto.nprobe}"
            default = _measure(auto, label, param, add_s, q, exact_found, ndcg)
        for mode in ("dense", "hybrid"):
            t = time.perf_counter()
            found = [[h.record.id for h in store.search(v, K, text=text, mode=mode, alpha=alpha)]
                     for v, text in zip(q, qtexts)]
            ms = (time.perf_counter() - t) / len(q) * 1e3
            strict, per_doc = ndcg(found)
            rows.append({"index": name, "add s": add_s, "mode": mode, "nDCG@10": strict, "doc-nDCG": per_doc, "ms/q": ms})
        faiss.omp_set_num_threads(threads)
        del store
    print_table(rows, f"DocStore on the same corpus, SciFact test, k=10, alpha={alpha} (1 FAISS thread while searching)")
    return default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="random vectors")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--real", action="store_true", help="the >= 100k real-passage corpus (see the docstring)")
    parser.add_argument("--quick", action="store_true", help="--real: fewer sweep points, unit vectors only")
    args = parser.parse_args()
    if args.real:
        real(args.quick)
        return
    rng = np.random.default_rng(0)
    sweep("random N(0, I)", rng.standard_normal((args.n, 384), dtype=np.float32),
          rng.standard_normal((args.queries, 384), dtype=np.float32))
    if args.skip_scifact:
        return
    if not (SCIFACT / "corpus.jsonl").is_file():
        print(f"\nSciFact not found at {SCIFACT}; skipping the real-embedding runs")
        return
    import torch

    from ragcun.model.encoder import GaussianEncoder

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
