"""Research: Gaussian heads on a frozen base: quality and isotropy on the ragcun-train demo and on held-out NQ.

    HF_HUB_OFFLINE=1 python -m benchmarks.research.heads [--heads linear residual] [--lambdas 0.5 2 5]

Its findings are in the README's training section.

Each head × λ_iso is trained by ``ragcun_train.train`` on the bundled demo (SciFact training pairs,
frozen base, defaults otherwise) and measured on

- the demo's test split, as ``ragcun-train`` reports it (nDCG@10, SIGReg, effective rank), and on
  its "new-doc" queries: those none of whose relevant documents is a training positive (a head
  can learn which corpus documents were training positives, and 64 of the 106 test documents are);
- a held-out NQ set that no model trains on: 800 Natural Questions dev questions (QED) against
  2,500 passages (their positives plus random others) from ``shared/data/train/qed_nq_xquad_en``;
  isotropy is measured after re-centring the head's outputs on that corpus (mean 0, average
  variance 1), which changes no L2 ranking.

The base row is all-MiniLM-L6-v2 by cosine, its isotropy that of the centred and scaled base.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import NQ_PAIRS, print_table
from ragcun import GaussianEncoder, isotropy_report
from ragcun.model.head import identity_map
from ragcun_eval.beir import BeirDataset, load_beir, load_qrels
from ragcun_train.api import DEMO_DIR, train
from ragcun_train.evaluation import retrieval_metrics


def heldout_nq(path: Path = NQ_PAIRS, n_queries: int = 800, n_docs: int = 2500, seed: int = 0) -> BeirDataset:
    """800 NQ dev questions against their positives plus random other passages, 2,500 in all."""
    rows = [json.loads(line) for line in path.open()]
    passages = list(dict.fromkeys(r["positive"] for r in rows))
    pid = {p: f"p{i}" for i, p in enumerate(passages)}
    rng = random.Random(seed)
    chosen = rng.sample([r for r in rows if r["source"] == "qed_nq_dev"], n_queries)
    positives = {r["positive"] for r in chosen}
    others = [p for p in passages if p not in positives]
    corpus = sorted(positives | set(rng.sample(others, n_docs - len(positives))), key=pid.get)
    return BeirDataset(
        "nq-heldout", [pid[p] for p in corpus], corpus,
        {f"q{i}": r["query"] for i, r in enumerate(chosen)}, {f"q{i}": {pid[r["positive"]]: 1} for i, r in enumerate(chosen)},
    )


def new_doc_queries(demo: BeirDataset) -> list[str]:
    """Demo test queries none of whose relevant documents is a training positive."""
    seen = {d for rel in load_qrels(DEMO_DIR / "qrels" / "train.tsv").values() for d in rel}
    return [q for q, rel in demo.qrels.items() if not set(rel) & seen]


def recentred_isotropy(y: np.ndarray) -> dict:
    """``isotropy_report`` of ``y`` shifted to mean 0 and scaled to average variance 1."""
    y = y - y.mean(0)
    return isotropy_report(y / np.sqrt(y.var(0).mean())).to_dict()


def ndcg(q: np.ndarray, d: np.ndarray, data: BeirDataset, qids: list[str] | None = None) -> float:
    """nDCG@10 of L2 ranking, on ``qids`` (default: all queries)."""
    if qids is not None:
        rows = [list(data.queries).index(q) for q in qids]
        data = BeirDataset(data.name, data.doc_ids, data.doc_texts, {q: data.queries[q] for q in qids}, {q: data.qrels[q] for q in qids})
        q = q[rows]
    return retrieval_metrics(q, d, data)["ndcg@10"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", nargs="+", default=["linear", "residual"])
    p.add_argument("--lambdas", nargs="+", type=float, default=[0.5, 2.0, 5.0], help="λ_iso values (default: 0.5 2 5)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)

    demo, nq = load_beir(DEMO_DIR, split="test"), heldout_nq()
    new_docs = new_doc_queries(demo)
    encoder = GaussianEncoder()
    base = {name: (encoder.encode_base(list(data.queries.values())), encoder.encode_base(data.doc_texts)) for name, data in
            (("demo", demo), ("nq", nq))}
    print(f"demo: {len(demo.queries)} test queries ({len(new_docs)} new-doc), {len(demo.doc_ids)} docs; "
          f"NQ held-out: {len(nq.queries)} queries, {len(nq.doc_ids)} passages")

    def row(name: str, lam: str, demo_iso: dict, head=lambda x: x, seconds: float = 0.0) -> dict[str, object]:
        (dq, dd), (nq_q, nq_d) = ((head(q), head(d)) for q, d in (base["demo"], base["nq"]))
        nq_iso = recentred_isotropy(nq_d)
        print(f"measured {name} λ_iso {lam}", file=sys.stderr, flush=True)
        return {"head": name, "λ_iso": lam, "demo nDCG@10": ndcg(dq, dd, demo),
                "demo new-doc nDCG@10": ndcg(dq, dd, demo, new_docs), "demo SIGReg": demo_iso["sigreg"],
                "isotropic": demo_iso["is_isotropic"], "demo eff. rank": round(demo_iso["effective_rank"]),
                "NQ nDCG@10": ndcg(nq_q, nq_d, nq), "NQ SIGReg (re-centred)": nq_iso["sigreg"],
                "NQ eff. rank": round(nq_iso["effective_rank"]), "train s": round(seconds)}

    w, b = identity_map(base["demo"][1].astype(np.float64), base["demo"][1].shape[1])
    rows = [row("base, cosine", "—", isotropy_report(base["demo"][1] @ w.T + b).to_dict())]
    for head in args.heads:
        for lam in args.lambdas:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.time()
                result = train(None, head=head, lambda_isotropy=lam, output=tmp, show_progress=False)
                seconds = time.time() - start

            def apply(x: np.ndarray, model: GaussianEncoder = result.model) -> np.ndarray:
                with torch.no_grad():
                    return model.apply_head(torch.as_tensor(x)).numpy()

            rows.append(row(head, f"{lam:g}", result.report["after"]["isotropy"], apply, seconds))
    print_table(rows)


if __name__ == "__main__":
    main()
