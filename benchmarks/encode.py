"""CPU encoding speed and retrieval quality of each inference backend, in one run.

Feeds the README's "Encoding speed on a CPU" section. The bundled Gaussian model (identity head: its L2
ranking is the base model's cosine ranking) with ``backend="torch"`` (sentence-transformers' PyTorch
path), ``"onnx"`` (ONNX Runtime, fp32) and ``"onnx-int8"`` (dynamically quantised weights):

- speed: texts/s encoding SciFact abstracts (the first ``--texts``), batch 32, the backends timed in turn
  (interleaved rounds, best of ``--rounds``; :func:`benchmarks.common.interleaved`), after a warm-up that
  builds each export;
- quality: nDCG@10 on SciFact test (300 queries, 5,183 documents; ``--quick``: 50 queries, 600 documents),
  every document and query encoded by each backend (PyTorch's document vectors come through the embedding
  cache, which holds PyTorch's or the lossless ONNX backend's, and are encoded once if missing);
- ingest: the time to encode the ≥ 100k passages of :mod:`benchmarks.real_corpus`, *estimated* from each
  backend's texts/s on a systematic sample of them (every k-th passage, so the sample follows their
  length distribution) times their count.

The last line is ``encode: backend=<b> speedup=<x>x ndcg_delta=<d>`` for the backend ragcun uses by
default on a CPU (:func:`ragcun.model.backends.resolve_backend`): its texts/s over PyTorch's, and its
nDCG@10 minus PyTorch's.

Run from the repository root: ``HF_HUB_OFFLINE=1 python -m benchmarks.encode [--quick]``
(or ``python benchmarks/encode.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import real_corpus
from benchmarks.common import SCIFACT, interleaved, print_table, require

BATCH = 32


def _backends() -> list[str]:
    from ragcun.model.backends import BACKENDS, onnxruntime_available

    return list(BACKENDS) if onnxruntime_available() else ["torch"]


def _vectors(encoder, cache, texts: list[str], role: str, fresh: bool) -> np.ndarray:
    """The model's outputs for ``texts``: base outputs from the cache (``fresh=False``) or encoded now, then the head."""
    import torch

    base = cache.encode(texts, role) if fresh else cache.get(texts, role)
    with torch.no_grad():
        return encoder.apply_head(torch.as_tensor(base)).numpy()


def ndcg10(encoder, cache, data, fresh: bool) -> float:
    """Mean nDCG@10 of L2 retrieval over ``data``'s queries."""
    import faiss

    from ragcun_eval.metrics import ndcg_at_k

    docs = _vectors(encoder, cache, data.doc_texts, "document", fresh).astype(np.float32)
    qids = sorted(data.queries)
    queries = _vectors(encoder, cache, [data.queries[q] for q in qids], "query", fresh).astype(np.float32)
    index = faiss.IndexFlatL2(docs.shape[1])
    index.add(docs)
    _, top = index.search(queries, 10)
    return float(np.mean([ndcg_at_k([data.doc_ids[i] for i in row], data.qrels[q]) for q, row in zip(qids, top)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a SciFact subset and fewer texts (a smoke run)")
    parser.add_argument("--texts", type=int, help="SciFact abstracts timed per round (default 400; quick 96)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best kept)")
    parser.add_argument("--ingest-sample", type=int, help="real-corpus passages timed (default 512; quick 128; 0: skip)")
    args = parser.parse_args()

    import torch

    from ragcun import GaussianEncoder
    from ragcun.model.backends import resolve_backend
    from ragcun.model.backends.onnx_runtime import cpu_threads
    from ragcun.model.cache import EmbeddingCache
    from ragcun_eval.beir import load_beir

    n_texts = args.texts or (96 if args.quick else 400)
    n_ingest = args.ingest_sample if args.ingest_sample is not None else (128 if args.quick else 512)
    data = load_beir(require(SCIFACT), "test")
    if args.quick:
        data = data.subset(max_queries=50, max_docs=600)
    sample = data.doc_texts[:n_texts]
    backends = _backends()
    default = resolve_backend(None, "cpu")
    print(f"cores {cpu_threads()}, torch threads {torch.get_num_threads()}, ONNX Runtime intra-op threads {cpu_threads()}; "
          f"backends {backends}; ragcun's default on a CPU: {default}", flush=True)

    encoders, export_s = {}, {}
    for b in backends:
        encoders[b] = GaussianEncoder(backend=b, device="cpu")
        export_s[b] = time.perf_counter()
        encoders[b].encode_document(sample[:2], batch_size=BATCH)  # builds (or finds) the export
        export_s[b] = time.perf_counter() - export_s[b]
    speed = interleaved({b: (lambda e=e: e.encode_document(sample, batch_size=BATCH)) for b, e in encoders.items()},
                        rounds=args.rounds, items=len(sample))
    print(f"timed {len(sample)} SciFact abstracts x {args.rounds} rounds", flush=True)

    ingest = {}
    if n_ingest and real_corpus.available():
        corpus = real_corpus.build()
        step = max(1, len(corpus.texts) // n_ingest)
        passages = corpus.texts[::step][:n_ingest]
        ingest = interleaved({b: (lambda e=e: e.encode_document(passages, batch_size=BATCH)) for b, e in encoders.items()},
                             rounds=args.rounds, items=len(passages))
        print(f"timed {len(passages)} of the {len(corpus.texts):,} real-corpus passages (every {step}th)", flush=True)

    quality = {}
    for b, e in encoders.items():
        cache = EmbeddingCache(e, backend=b, batch_size=BATCH)
        quality[b] = ndcg10(e, cache, data, fresh=b != "torch")
        print(f"nDCG@10 {b}: {quality[b]:.4f}", flush=True)

    rows = []
    for b in backends:
        row = {"backend": b, "texts/s": round(1 / speed[b].best, 1), "speed-up": round(speed["torch"].best / speed[b].best, 2),
               "nDCG@10": round(quality[b], 4), "nDCG@10 change": f"{quality[b] - quality['torch']:+.4f}",
               "first-use export s": round(export_s[b], 1)}
        if ingest:
            row["100k-corpus ingest (est.)"] = f"{len(corpus.texts) * ingest[b].best / 60:.0f} min"
        rows.append(row)
    print_table(rows, f"SciFact test ({len(data.queries)} queries, {len(data.doc_ids)} documents), batch {BATCH}, "
                      f"best of {args.rounds} interleaved rounds")
    print(f"encode: backend={default} speedup={speed['torch'].best / speed[default].best:.2f}x "
          f"ndcg_delta={quality[default] - quality['torch']:+.4f}")


if __name__ == "__main__":
    main()
