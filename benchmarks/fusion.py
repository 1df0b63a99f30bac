"""Hybrid fusion choices: nDCG@10 of each normalisation × dense weight, and reciprocal-rank fusion, through ``DocStore``.

Feeds ``docs/benchmarks.md`` ("Hybrid fusion") and the README's hybrid section (RRF against convex fusion).

Tuning sets (the defaults are chosen on these, never on a test split): SciFact *train* queries
(``qrels/train.tsv``, 809 queries, 5,183 documents) and NQ questions from ``qed_nq_xquad_en`` (its
``qed_nq_*`` rows; the XQuAD rows are SQuAD dev and stay out): ``--nq-queries`` questions, their
positive passages plus random other passages of the set, ``--nq-docs`` in all. ``--test`` adds SciFact
test, reported only. Every figure is a real ``DocStore.search`` (hybrid, 100 candidates a side) over an
exact ``L2Index`` of the bundled all-MiniLM-L6-v2's unit vectors (its cosine ranking; the bundled
Gaussian model's vectors are these times sqrt(384), which no normalisation here sees), vectors through
the shared embedding cache.

Run from the repository root: HF_HUB_OFFLINE=1 python -m benchmarks.fusion [--quick] [--test]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence

import numpy as np

from benchmarks.common import NQ_PAIRS, SCIFACT, print_table, require
from ragcun.index.faiss_l2 import L2Index
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import DEFAULT_ALPHA, NORMALIZATIONS
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_eval.metrics import evaluate
from ragcun_eval.models import Embedder, parse_model_spec

WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9)


def nq_set(n_queries: int, n_docs: int, seed: int = 0) -> BeirDataset:
    """``n_queries`` NQ questions (``qed_nq_*`` rows) against their positives plus random other passages, ``n_docs`` in all."""
    rows = [json.loads(line) for line in require(NQ_PAIRS).open(encoding="utf-8")]
    rows = [r for r in rows if r["source"].startswith("qed_nq")]
    passages = list(dict.fromkeys(r["positive"] for r in rows))
    pid = {p: f"p{i}" for i, p in enumerate(passages)}
    rng = random.Random(seed)
    chosen = rng.sample(rows, min(n_queries, len(rows)))
    positives = {r["positive"] for r in chosen}
    others = [p for p in passages if p not in positives]
    corpus = sorted(positives | set(rng.sample(others, max(0, min(len(others), n_docs - len(positives))))), key=pid.get)
    return BeirDataset("nq", [pid[p] for p in corpus], corpus, {f"q{i}": r["query"] for i, r in enumerate(chosen)},
                       {f"q{i}": {pid[r["positive"]]: 1} for i, r in enumerate(chosen)})


class Bench:
    """One dataset in a ``DocStore`` with its query vectors: nDCG@10 of any search settings."""

    def __init__(self, data: BeirDataset, embedder: Embedder) -> None:
        spec = parse_model_spec("bundled")
        unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
        docs = unit(embedder.embed(spec, data.doc_texts, "document"))
        self.texts = [data.queries[q] for q in data.queries]
        self.vectors = unit(embedder.embed(spec, self.texts, "query"))
        self.data = data
        self.store = DocStore(L2Index(docs.shape[1]))
        self.store.add([Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)], docs)

    def ndcg(self, **search: object) -> float:
        """nDCG@10 of ``DocStore.search(..., **search)`` over every query (a document never answers its own id)."""
        run = {}
        for q, vector, text in zip(self.data.queries, self.vectors, self.texts):
            hits = self.store.search(vector, 11, text=text, **search)  # type: ignore[arg-type]
            run[q] = [h.record.id for h in hits if h.record.id != q][:10]
        return float(evaluate(run, self.data.qrels)["ndcg@10"])


def grid(benches: dict[str, Bench], weights: Sequence[float]) -> list[dict[str, object]]:
    """One row per normalisation × weight (and dense, RRF): nDCG@10 on every set."""
    rows: list[dict[str, object]] = [{"fusion": "dense only", **{n: b.ndcg(mode="dense") for n, b in benches.items()}}]
    for norm in NORMALIZATIONS:
        for w in weights:
            rows.append({"fusion": f"convex, {norm}, alpha {w}",
                         **{n: b.ndcg(mode="hybrid", normalization=norm, alpha=w) for n, b in benches.items()}})
    rows.append({"fusion": "rrf, k 60", **{n: b.ndcg(mode="hybrid", fusion="rrf") for n, b in benches.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets (100 queries each, 1,000 documents), weights 0.6-0.8")
    parser.add_argument("--nq-queries", type=int, default=800)
    parser.add_argument("--nq-docs", type=int, default=1500)
    parser.add_argument("--test", action="store_true", help="also SciFact test (reported, never used to choose)")
    args = parser.parse_args()
    embedder = Embedder()
    train = load_beir(require(SCIFACT), "train")
    sets = {"SciFact train": train, "NQ": nq_set(args.nq_queries, args.nq_docs)}
    if args.test:
        sets["SciFact test"] = load_beir(SCIFACT, "test")
    if args.quick:
        sets = {name: data.subset(100, 1000) for name, data in sets.items()}
    weights = (0.6, DEFAULT_ALPHA, 0.8) if args.quick else WEIGHTS
    benches = {name: Bench(data, embedder) for name, data in sets.items()}
    sizes = "; ".join(f"{n}: {len(b.data.queries)} queries, {len(b.data.doc_ids)} documents" for n, b in benches.items())
    print_table(grid(benches, weights), f"nDCG@10, hybrid DocStore.search, 100 candidates a side ({sizes})")


if __name__ == "__main__":
    main()
