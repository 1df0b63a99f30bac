"""CPU encoding speed and retrieval quality of each inference backend, in one run.

Feeds the README's "Encoding on a CPU: backends" section. The bundled Gaussian model (identity head: its L2
ranking is the base model's cosine ranking) with ``backend="torch"`` (sentence-transformers' PyTorch
path), ``"onnx"`` (ONNX Runtime, fp32) and ``"onnx-int8"`` (dynamically quantised weights):

- speed: texts/s encoding SciFact abstracts (the first ``--texts``), batch 32, the backends timed in turn
  (interleaved rounds, best of ``--rounds``; :func:`benchmarks.common.interleaved`), after a warm-up that
  builds each export;
- quality: nDCG@10 on SciFact test (300 queries, 5,183 documents; ``--quick``: 50 queries, 600 documents),
  every document and query encoded by each backend (PyTorch's document vectors come through the embedding
  cache, which holds PyTorch's or the lossless ONNX backend's, and are encoded once if missing);
- query latency: milliseconds to encode one query at a time (the first ``--latency-queries`` SciFact test
  queries, each backend in turn, median), what a user waits for on every search;
- ingest: the time to encode the ≥ 100k passages of :mod:`benchmarks.real_corpus`, *estimated* from each
  backend's texts/s on a systematic sample of them (every k-th passage, so the sample follows their
  length distribution) times their count.

- ceiling: the fp32 matrix-multiply rate this machine reaches (a PyTorch matmul of the model's shapes on
  every thread) and the multiply-adds the model's transformer needs for the timed texts (its linear
  layers and attention, at each batch's padded length): the fastest any fp32 engine could encode them,
  and how close each backend comes. Where PyTorch is already near it, no lossless engine can be much faster;
- GPU: where CUDA is present, the PyTorch path on the GPU (``torch-cuda``, what ``device`` picks there) is
  timed, scored and compared beside the CPU backends; every backend's ``min cosine`` column is its document
  vectors' least cosine to PyTorch's on the CPU;
- ``--processes``: the same texts split over one process per core (each pinned to its core, one thread,
  started together), against one process on every thread: whether a multi-process pool would be faster.

The last line is ``encode: backend=<b> speedup=<x>x ndcg_delta=<d>`` for the backend ragcun uses by
default on a CPU (:func:`ragcun.model.backends.resolve_backend`): its texts/s over PyTorch's, and its
nDCG@10 minus PyTorch's.

Run from the repository root: ``HF_HUB_OFFLINE=1 python -m benchmarks.encode [--quick]``
(or ``python benchmarks/encode.py``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository's ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import real_corpus
from benchmarks.common import SCIFACT, interleaved, print_table, require, seconds

BATCH = 32


def _backends() -> list[str]:
    from ragcun.model.backends import BACKENDS, onnxruntime_available

    return list(BACKENDS) if onnxruntime_available() else ["torch"]


def _vectors(encoder, cache, texts: list[str], role: str, fresh: bool) -> np.ndarray:
    """The model's outputs for ``texts``: base outputs from the cache (``fresh=False``) or encoded now, then the head."""
    import torch

    base = cache.encode(texts, role) if fresh else cache.get(texts, role)
    with torch.no_grad():
        return encoder.apply_head(torch.as_tensor(base)).cpu().numpy()


def ndcg10(encoder, cache, data, fresh: bool) -> tuple[float, np.ndarray]:
    """Mean nDCG@10 of L2 retrieval over ``data``'s queries, and the document vectors it ranked."""
    import faiss

    from ragcun_eval.metrics import ndcg_at_k

    docs = _vectors(encoder, cache, data.doc_texts, "document", fresh).astype(np.float32)
    qids = sorted(data.queries)
    queries = _vectors(encoder, cache, [data.queries[q] for q in qids], "query", fresh).astype(np.float32)
    index = faiss.IndexFlatL2(docs.shape[1])
    index.add(docs)
    _, top = index.search(queries, 10)
    return float(np.mean([ndcg_at_k([data.doc_ids[i] for i in row], data.qrels[q]) for q, row in zip(qids, top)])), docs


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The least cosine between matching rows of ``a`` and ``b``."""
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def cpu_vector_units() -> str:
    """The CPU's wide-vector and int8 dot-product instruction sets (Linux ``/proc/cpuinfo``), as one phrase."""
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return "unknown"
    found = [name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX-VNNI", "avx_vnni"),
                                     ("AVX512-VNNI", "avx512_vnni"), ("AMX", "amx_tile")) if flag in flags]
    return ", ".join(found) or "no AVX2"


def transformer_gflop(encoder, texts: list[str]) -> float:
    """GFLOP the encoder's transformer spends on ``texts`` in batches of :data:`BATCH` sorted by length, as
    sentence-transformers batches them: 2 per multiply-add of every linear layer and of attention, at each
    batch's padded length."""
    import torch

    transformer = encoder[0]
    config = transformer.model.config
    linear = sum(2 * m.in_features * m.out_features for m in transformer.model.modules() if isinstance(m, torch.nn.Linear))
    order = sorted(texts, key=len, reverse=True)
    total = 0.0
    for start in range(0, len(order), BATCH):
        shape = transformer.preprocess(order[start:start + BATCH])["input_ids"].shape
        attention = 4 * shape[1] * config.hidden_size * config.num_hidden_layers  # scores and weighted values
        total += shape[0] * shape[1] * (linear + attention)
    return total / 1e9


def fp32_matmul_gflops(hidden: int, intermediate: int, rounds: int = 5) -> float:
    """The fp32 matmul rate (GFLOP/s, best of ``rounds``) on every thread, at a batch's shape of the model's
    feed-forward layer."""
    import torch

    a, w = torch.randn(BATCH * 256, hidden), torch.randn(hidden, intermediate)
    a @ w
    best = min(seconds(lambda: [a @ w for _ in range(10)]) for _ in range(rounds))
    return 10 * 2 * a.shape[0] * hidden * intermediate / best / 1e9


_START: Any = None  # the pool's start barrier, set in each worker by _init_worker


def _init_worker(barrier: Any) -> None:
    global _START
    _START = barrier


def _pinned_encode(job: tuple[str, int, list[str]]) -> float:
    """Seconds a worker pinned to one core, on one thread, takes to encode its texts with a backend (timed
    from a barrier every worker reaches after loading and warming up)."""
    backend, core, texts = job
    os.sched_setaffinity(0, {core})  # ONNX Runtime's thread count follows the affinity
    import torch

    from ragcun import GaussianEncoder

    torch.set_num_threads(1)
    encoder = GaussianEncoder(backend=backend, device="cpu")
    encoder.encode_document(texts[:2], batch_size=BATCH)
    _START.wait()
    return seconds(lambda: encoder.encode_document(texts, batch_size=BATCH))


def one_process_per_core(backends: list[str], texts: list[str], rounds: int) -> dict[str, float]:
    """Texts/s of each backend with ``texts`` split over one pinned single-thread process per core (best of
    ``rounds``; a round lasts as long as its slowest process)."""
    cores = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(cores))
    speed = {}
    with context.Pool(len(cores), initializer=_init_worker, initargs=(barrier,)) as pool:
        for b in backends:
            jobs = [(b, core, texts[i::len(cores)]) for i, core in enumerate(cores)]
            speed[b] = len(texts) / min(max(pool.map(_pinned_encode, jobs, chunksize=1)) for _ in range(rounds))
    return speed


def query_ms(encoder, queries: list[str]) -> float:
    """Median milliseconds to encode one query of ``queries`` at a time (after one warm-up encode)."""
    encoder.encode_query(queries[:1])
    return 1000 * float(np.median([seconds(lambda q=q: encoder.encode_query([q])) for q in queries]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a SciFact subset and fewer texts (a smoke run)")
    parser.add_argument("--texts", type=int, help="SciFact abstracts timed per round (default 400; quick 96)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best kept)")
    parser.add_argument("--latency-queries", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--processes", action="store_true",
                        help="also time one pinned single-thread process per core (a multi-process pool)")
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
    if torch.cuda.is_available():
        encoders["torch-cuda"] = GaussianEncoder(backend="torch", device="cuda")
        print(f"GPU: {torch.cuda.get_device_name(0)}", flush=True)
    for b, e in encoders.items():
        export_s[b] = time.perf_counter()
        e.encode_document(sample[:2], batch_size=BATCH)  # builds (or finds) the export
        export_s[b] = time.perf_counter() - export_s[b]
    speed = interleaved({b: (lambda e=e: e.encode_document(sample, batch_size=BATCH)) for b, e in encoders.items()},
                        rounds=args.rounds, items=len(sample))
    print(f"timed {len(sample)} SciFact abstracts x {args.rounds} rounds", flush=True)
    config = encoders["torch"][0].model.config
    peak = fp32_matmul_gflops(config.hidden_size, config.intermediate_size)
    need = transformer_gflop(encoders["torch"], sample)
    print(f"ceiling: CPU vector units {cpu_vector_units()}; fp32 matmul {peak:.0f} GFLOP/s on {torch.get_num_threads()} "
          f"threads; the transformer needs {need:.0f} GFLOP for these texts, so no fp32 engine encodes them faster "
          f"than {len(sample) * peak / need:.1f} texts/s; of that ceiling: "
          + ", ".join(f"{b} {need / speed[b].best / len(sample) / peak:.0%}" for b in backends), flush=True)

    queries = [data.queries[q] for q in sorted(data.queries)][:args.latency_queries]
    latency = {b: query_ms(e, queries) for b, e in encoders.items()}
    pooled = one_process_per_core(backends, sample, args.rounds) if args.processes else {}

    ingest = {}
    if n_ingest and real_corpus.available():
        corpus = real_corpus.build()
        step = max(1, len(corpus.texts) // n_ingest)
        passages = corpus.texts[::step][:n_ingest]
        ingest = interleaved({b: (lambda e=e: e.encode_document(passages, batch_size=BATCH)) for b, e in encoders.items()},
                             rounds=args.rounds, items=len(passages))
        print(f"timed {len(passages)} of the {len(corpus.texts):,} real-corpus passages (every {step}th)", flush=True)

    quality, docs = {}, {}
    for b, e in encoders.items():
        cache = EmbeddingCache(e, backend=e.inference_backend, batch_size=BATCH)
        quality[b], docs[b] = ndcg10(e, cache, data, fresh=b != "torch")
        print(f"nDCG@10 {b}: {quality[b]:.4f}", flush=True)

    rows = []
    for b in encoders:
        row = {"backend": b, "texts/s": round(1 / speed[b].best, 1), "speed-up": round(speed["torch"].best / speed[b].best, 2),
               "nDCG@10": round(quality[b], 4), "nDCG@10 change": f"{quality[b] - quality['torch']:+.4f}",
               "min cosine": f"{min_cosine(docs[b], docs['torch']):.6f}",
               "query ms": round(latency[b], 1), "first-use export s": round(export_s[b], 1)}
        if pooled:
            row["texts/s, a process per core"] = round(pooled[b], 1)
        if ingest:
            row["100k-corpus ingest (est.)"] = f"{len(corpus.texts) * ingest[b].best / 60:.0f} min"
        rows.append(row)
    print_table(rows, f"SciFact test ({len(data.queries)} queries, {len(data.doc_ids)} documents), batch {BATCH}, "
                      f"best of {args.rounds} interleaved rounds")
    print(f"encode: backend={default} speedup={speed['torch'].best / speed[default].best:.2f}x "
          f"ndcg_delta={quality[default] - quality['torch']:+.4f}")


if __name__ == "__main__":
    main()
