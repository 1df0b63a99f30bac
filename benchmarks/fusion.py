"""Hybrid fusion choices: nDCG@10 of each normalisation × dense weight, and reciprocal-rank fusion, through ``DocStore``.

Feeds ``docs/benchmarks.md`` ("Hybrid fusion") and the README's hybrid section (RRF against convex fusion).

Tuning sets (the defaults are chosen on these, never on a test split): SciFact *train* queries
(``qrels/train.tsv``, 809 queries, 5,183 documents) and NQ questions from ``qed_nq_xquad_en`` (its
``qed_nq_*`` rows; the XQuAD rows are SQuAD dev and stay out): all 8,371 questions against all 7,956
passages by default, or ``--nq-queries`` questions, their positive passages plus random other passages of
the set, ``--nq-docs`` in all. ``--test`` adds SciFact
test, reported only. One real hybrid ``DocStore.search`` per query (exact ``L2Index`` of the bundled
all-MiniLM-L6-v2's unit vectors: its cosine ranking; the bundled Gaussian model's vectors are these times
sqrt(384), which no normalisation here sees) and BM25 query per query gather the candidates as
``DocStore`` does (each side's top 100, with both scores); each row then ranks them with
``HybridFusion.scores``, the function ``DocStore`` calls, in ``DocStore``'s order (a check row runs
``DocStore.search`` itself with the defaults). Vectors come through the shared embedding cache.

The choice rule: each row's mean relative gain over dense on the tuning sets (the ``tuning gain``
column); for each normalisation, the weight with the largest is printed as its pick.

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
from ragcun.store.fusion import DEFAULT_CANDIDATES, DEFAULT_RRF_K, NORMALIZATIONS, HybridFusion
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_eval.metrics import evaluate, ndcg_at_k
from ragcun_eval.models import Embedder, parse_model_spec

WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9)


def nq_set(n_queries: int | None = None, n_docs: int | None = None, seed: int = 0) -> BeirDataset:
    """``n_queries`` NQ questions (``qed_nq_*`` rows) against their positives plus random other passages, ``n_docs``
    in all (``None``: every question, every passage)."""
    rows = [json.loads(line) for line in require(NQ_PAIRS).open(encoding="utf-8")]
    rows = [r for r in rows if r["source"].startswith("qed_nq")]
    passages = list(dict.fromkeys(r["positive"] for r in rows))
    pid = {p: f"p{i}" for i, p in enumerate(passages)}
    rng = random.Random(seed)
    chosen = rng.sample(rows, len(rows) if n_queries is None else min(n_queries, len(rows)))
    positives = {r["positive"] for r in chosen}
    others = [p for p in passages if p not in positives]
    extra = len(others) if n_docs is None else max(0, min(len(others), n_docs - len(positives)))
    corpus = sorted(positives | set(rng.sample(others, extra)), key=lambda p: pid[p])
    return BeirDataset("nq", [pid[p] for p in corpus], corpus, {f"q{i}": r["query"] for i, r in enumerate(chosen)},
                       {f"q{i}": {pid[r["positive"]]: 1} for i, r in enumerate(chosen)})


class Bench:
    """One dataset in a ``DocStore`` with its query vectors, and each query's hybrid candidates with both scores."""

    def __init__(self, data: BeirDataset, embedder: Embedder) -> None:
        spec = parse_model_spec("bundled")
        unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
        docs = unit(embedder.embed(spec, data.doc_texts, "document"))
        texts = [data.queries[q] for q in data.queries]
        vectors = unit(embedder.embed(spec, texts, "query"))
        self.data = data
        self.store = DocStore(L2Index(docs.shape[1]))
        self.store.add([Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)], docs)
        self.dense = self._run([[h.record.id for h in self.store.search(v, 11)] for v in vectors])
        self.candidates = [self._candidates(v, t) for v, t in zip(vectors, texts)]
        self.searched = self._run([[h.record.id for h in self.store.search(v, 11, text=t, mode="hybrid")]
                                   for v, t in zip(vectors, texts)])

    def _candidates(self, vector: np.ndarray, text: str) -> tuple[list[str], np.ndarray, np.ndarray, float]:
        """A hybrid search's candidates as ``DocStore`` gathers them: each side's top 100 (the lexical side only
        documents matching a query term), every one with its distance and BM25 score (0: no query term)."""
        dense = self.store.search(vector, DEFAULT_CANDIDATES)
        known = {h.record.id: h.distance for h in dense}
        assert self.store.lexical is not None
        found = self.store.lexical.query(text, DEFAULT_CANDIDATES, None, list(known))
        bm25 = dict(zip(known, found.extra_scores.tolist())) | dict(zip(found.ids, found.scores.tolist()))
        missing = [i for i in found.ids if i not in known]
        if missing:
            known |= dict(zip(missing, self.store.index.distances(vector[None, :], missing).tolist()))
        ids = list(known)
        return ids, np.array([known[i] for i in ids]), np.array([bm25[i] for i in ids]), float(vector @ vector)

    def _top10(self, ranked: list[list[str]]) -> dict[str, list[str]]:
        """Each query's top 10 of its ranking (a document never answers its own id, as in BEIR)."""
        return {q: [d for d in ids if d != q][:10] for q, ids in zip(self.data.queries, ranked)}

    def _run(self, ranked: list[list[str]]) -> float:
        """nDCG@10 of one ranking per query."""
        return float(evaluate(self._top10(ranked), self.data.qrels)["ndcg@10"])

    def _ranked(self, how: HybridFusion) -> list[list[str]]:
        """Each query's candidates ranked by ``how``, ordered as ``DocStore`` orders them (fused score, then distance)."""
        ranked = []
        for ids, dist, bm25, q_sq in self.candidates:
            order = np.lexsort((dist, -how.scores(dist, bm25, q_sq)))[:11]
            ranked.append([ids[j] for j in order])
        return ranked

    def ndcg(self, how: HybridFusion) -> float:
        """nDCG@10 of the candidates ranked by ``how``."""
        return self._run(self._ranked(how))

    def per_query(self, how: HybridFusion) -> np.ndarray:
        """Each query's nDCG@10 of the candidates ranked by ``how``, in query order."""
        run = self._top10(self._ranked(how))
        return np.array([ndcg_at_k(run[q], self.data.qrels[q], 10) for q in self.data.queries])


def grid(benches: dict[str, Bench], weights: Sequence[float],
         tuning: Sequence[str]) -> tuple[list[dict[str, object]], dict[str, float]]:
    """One row per normalisation × weight (and dense, RRF): nDCG@10 on every set and the mean relative gain
    over dense on the ``tuning`` sets; and each normalisation's pick, the weight with the largest gain."""
    def gain(scores: dict[str, float]) -> float:
        return float(np.mean([scores[n] / benches[n].dense - 1 for n in tuning]))

    def row(name: str, scores: dict[str, float]) -> dict[str, object]:
        return {"fusion": name, **scores, "tuning gain": f"{100 * gain(scores):+.2f}%"}

    rows = [row("dense only", {n: b.dense for n, b in benches.items()})]
    picks: dict[str, float] = {}
    for norm in NORMALIZATIONS:
        gains = {}
        for w in weights:
            how = HybridFusion(normalization=norm, alpha=w)
            scores = {n: b.ndcg(how) for n, b in benches.items()}
            gains[w] = gain(scores)
            rows.append(row(f"convex, {norm}, alpha {w}", scores))
        picks[norm] = max(gains, key=gains.__getitem__)
    rows.append(row(f"rrf, k {DEFAULT_RRF_K}", {n: b.ndcg(HybridFusion("rrf")) for n, b in benches.items()}))
    rows.append(row("check: DocStore.search with the defaults", {n: b.searched for n, b in benches.items()}))
    return rows, picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets (100 queries each, 1,000 documents), weights 0.6-0.8")
    parser.add_argument("--nq-queries", type=int, default=None, help="NQ questions (default: all 8,371)")
    parser.add_argument("--nq-docs", type=int, default=None, help="NQ passages (default: all 7,956)")
    parser.add_argument("--test", action="store_true", help="also SciFact test (reported, never used to choose)")
    args = parser.parse_args()
    embedder = Embedder()
    train = load_beir(require(SCIFACT), "train")
    sets = {"SciFact train": train, "NQ": nq_set(args.nq_queries, args.nq_docs)}
    tuning = list(sets)
    if args.test:
        sets["SciFact test"] = load_beir(SCIFACT, "test")
    if args.quick:
        sets = {name: data.subset(100, 1000) for name, data in sets.items()}
    weights = (0.6, 0.7, 0.8) if args.quick else WEIGHTS
    benches = {name: Bench(data, embedder) for name, data in sets.items()}
    sizes = "; ".join(f"{n}: {len(b.data.queries)} queries, {len(b.data.doc_ids)} documents" for n, b in benches.items())
    rows, picks = grid(benches, weights, tuning)
    print_table(rows, f"nDCG@10, hybrid DocStore.search, 100 candidates a side ({sizes}); tuning gain: mean "
                      f"relative gain over dense on {' and '.join(tuning)}")
    print("\npicks (largest tuning gain): " + ", ".join(f"{n} alpha {w}" for n, w in picks.items()))


if __name__ == "__main__":
    main()
