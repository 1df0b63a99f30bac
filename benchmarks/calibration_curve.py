"""How many judged queries a relevance calibrator needs, and whether hybrid hits' P(relevant) should use BM25.

Curve: on SciFact with the bundled Gaussian model (``GaussianEncoder()``), fit a
:class:`ragcun.scoring.calibrator.RelevanceCalibrator` on the top-10 hits of ``k`` random *train* queries
(what ``ragcun-eval calibrate --max-queries k`` does) and measure its ECE on every *test* query's top-10
hits; ``--draws`` random draws per ``k``, median and range reported, beside the ECE of the bundled calibrator
(fitted on SciFact train) on the same hits. ``--corpus nq``: the same on the NQ questions of
``../shared/data/train`` (``benchmarks.fusion.nq_set``: every question against every passage), fitted on a
random half of the questions and measured on the other half: a corpus the bundled calibrator was not fitted
on. Writes ``calibration_curve.png`` and ``calibration_curve.json`` into ``--out``.

Hybrid: on the top-10 *hybrid* hits (``DocStore``, default alpha), compare the distance-only calibrator
(the bundled one's distance terms, and one refitted on train hybrid hits), the stores' score (``Hit.relevance``
with the bundled calibrator: its hybrid terms, fitted on SciFact train hybrid hits, on d² and the BM25 share
over the best among the query's candidates) and two-feature logistics on the squared distance and another
BM25 feature (the raw score; the score over the query's best among its 10 hits), fitted on SciFact train
hybrid hits; ECE and Brier on the
test hybrid hits: SciFact test, or with ``--corpus nq`` every NQ question's (a corpus none of them was fitted on).

    HF_HUB_OFFLINE=1 python -m benchmarks.calibration_curve [--quick] [--corpus nq]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, SCIFACT, require
from benchmarks.fusion import nq_set
from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.calibrator import RelevanceCalibrator, fit_logistic
from ragcun.scoring.pairs import DEPTH
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Record
from ragcun_eval.beir import BeirDataset, load_beir
from ragcun_eval.calibrate import calibration_pairs
from ragcun_eval.claims import expected_calibration_error
from ragcun_eval.models import Embedder, parse_model_spec
from ragcun_eval.retrieval import ModelRun, run_model

KS = (5, 10, 25, 50, 100)


def per_query_pairs(run: ModelRun, data: BeirDataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each query's top-10 (distances, labels)."""
    out = {}
    for q in run.query_ids:
        single = ModelRun(run.dataset, run.spec, run.space, [q], run.ranked, run.distances, {})
        out[q] = calibration_pairs(single, data)
    return out


def stack(pairs: dict[str, tuple[np.ndarray, np.ndarray]], queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``queries``, concatenated."""
    return np.concatenate([pairs[q][0] for q in queries]), np.concatenate([pairs[q][1] for q in queries])


def curve(train: dict, test_d: np.ndarray, test_y: np.ndarray, ks: list[int], draws: int) -> list[dict]:
    """ECE on the test pairs of calibrators fitted on ``k`` random train queries, ``draws`` times per ``k``."""
    queries, rows = sorted(train), []
    for k in ks:
        eces, failed = [], 0
        for seed in range(draws if k < len(queries) else 1):
            chosen = random.Random(seed).sample(queries, min(k, len(queries)))
            try:
                cal = RelevanceCalibrator.fit(*stack(train, chosen))
            except ValueError:  # a single class, or no slope, in a small draw
                failed += 1
                continue
            eces.append(expected_calibration_error(cal(test_d), test_y))
        rows.append({"k": min(k, len(queries)), "draws": len(eces), "failed": failed,
                     "ece_median": statistics.median(eces) if eces else float("nan"),
                     "ece_min": min(eces, default=float("nan")), "ece_max": max(eces, default=float("nan"))})
        print(f"k={rows[-1]['k']:>4}  ECE median {rows[-1]['ece_median']:.3f}  "
              f"[{rows[-1]['ece_min']:.3f}, {rows[-1]['ece_max']:.3f}]  ({len(eces)} fits, {failed} failed)", flush=True)
    return rows


def hybrid_hits(run: ModelRun, data: BeirDataset, calibrator: RelevanceCalibrator) -> dict[str, np.ndarray]:
    """Each query's top-10 hybrid hits in a store scored by ``calibrator``: distances, labels, the store's
    ``relevance`` and two BM25 features: the raw score and the score over the best among the 10 hits."""
    store = DocStore(L2Index(run.space.docs.shape[1]), calibrator=calibrator)
    store.add([Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)], run.space.docs)
    cols: dict[str, list] = {"distance": [], "raw": [], "hits_max": [], "store": [], "label": []}
    for row, q in enumerate(run.query_ids):
        hits = [h for h in store.search(run.space.queries[row], DEPTH + 1, text=data.queries[q], mode="hybrid")
                if h.record.id != q][:DEPTH]
        scores = np.array([h.bm25_score or 0.0 for h in hits])
        cols["distance"] += [h.distance for h in hits]
        cols["raw"] += scores.tolist()
        cols["hits_max"] += (scores / max(scores.max(), 1e-12)).tolist()
        cols["store"] += [h.relevance for h in hits]
        cols["label"] += [data.qrels[q].get(h.record.id, 0) > 0 for h in hits]
    return {k: np.array(v) for k, v in cols.items()}


def two_feature(train: dict[str, np.ndarray], feature: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A logistic on (d², BM25 ``feature``) fitted on ``train`` hits; returns its P(relevant) of other hits."""
    def features(hits: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([hits["distance"] ** 2, hits[feature]], axis=1)

    x = features(train)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    w = fit_logistic((x - mu) / sd, train["label"].astype(np.float64))
    print(f"  {feature}: standardised weights intercept {w[0]:.3f}, d^2 {w[1]:.3f}, bm25 {w[2]:.3f}")
    return lambda hits: 1 / (1 + np.exp(-(w[0] + ((features(hits) - mu) / sd) @ w[1:])))


def hybrid_comparison(train_run: ModelRun, train: BeirDataset, test_run: ModelRun, test: BeirDataset,
                      bundled: RelevanceCalibrator) -> list[dict]:
    """ECE and Brier of the distance-only and two-feature P(relevant), fitted on ``train`` hybrid hits, on ``test``'s."""
    tr, te = hybrid_hits(train_run, train, bundled), hybrid_hits(test_run, test, bundled)
    refit = RelevanceCalibrator.fit(tr["distance"], tr["label"])
    scorers = {"distance only, bundled (fitted on dense train hits)": bundled(te["distance"]),
               "distance only, refitted on train hybrid hits": refit(te["distance"]),
               "the stores' score: bundled, hybrid terms (d^2, bm25_share)": te["store"]}
    for feature in ("raw", "hits_max"):
        scorers[f"distance + BM25 ({feature}), fitted on train hybrid hits"] = two_feature(tr, feature)(te)
    y, rows = te["label"].astype(np.float64), []
    for name, p in scorers.items():
        rows.append({"calibrator": name, "ece": expected_calibration_error(p, te["label"]),
                     "brier": float(np.mean((p - y) ** 2))})
        print(f"{name:<62} ECE {rows[-1]['ece']:.4f}  Brier {rows[-1]['brier']:.4f}", flush=True)
    print(f"test hybrid hits: {len(y)}, relevant {y.mean():.3f}")
    return rows


def plot(rows: list[dict], path: Path, tested_on: str, bundled_ece: float) -> None:
    """ECE (median and range of the draws) against the number of judged queries, beside the bundled calibrator's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [r["k"] for r in rows]
    med = [r["ece_median"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(ks, [r["ece_min"] for r in rows], [r["ece_max"] for r in rows], alpha=0.25, label="range of draws")
    ax.plot(ks, med, marker="o", label="median")
    ax.axhline(0.06, color="grey", linestyle="--", linewidth=1, label="ECE 0.06")
    ax.axhline(bundled_ece, color="tab:orange", linestyle=":", linewidth=1.5, label="bundled calibrator")
    ax.set_xscale("log")
    ax.set_xlabel("judged queries (top-10 hits each)")
    ax.set_ylabel(f"ECE on {tested_on} top-10 hits")
    ax.set_title("Relevance calibrator: judgements needed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def nq_split(run: ModelRun, data: BeirDataset) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Every NQ question's top-10 pairs, and a random half of the questions held out for testing."""
    pairs = per_query_pairs(run, data)
    return pairs, random.Random(0).sample(sorted(pairs), len(pairs) // 2)


def main() -> None:
    """Run the curve (and the hybrid comparison unless ``--quick`` or ``--no-hybrid``), print, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="k = 5, 25 and 3 draws, no hybrid comparison; NQ: 200 questions, 1,000 passages")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--no-hybrid", action="store_true", help="skip the hybrid comparison")
    parser.add_argument("--corpus", choices=("scifact", "nq"), default="scifact",
                        help="nq: the curve fitted on half of the NQ questions and tested on the other half; "
                             "the hybrid comparison tested on every NQ question")
    parser.add_argument("--out", type=Path, help="default: benchmarks/out/calibration_curve[_nq]")
    args = parser.parse_args()
    require(SCIFACT)
    out = args.out or REPO / "benchmarks" / "out" / ("calibration_curve_nq" if args.corpus == "nq" else "calibration_curve")
    spec, embedder = parse_model_spec("gaussian"), Embedder()
    bundled = embedder.model(spec).model.relevance_calibrator
    train = load_beir(SCIFACT, "train")
    train_run = functools.cache(lambda: run_model(train, spec, embedder))  # encoded only where it is used
    if args.corpus == "nq":
        test = nq_set(200, 1000) if args.quick else nq_set()
        test_run = run_model(test, spec, embedder)
        pairs, test_ids = nq_split(test_run, test)
        held = set(test_ids)
        train_pairs = {q: v for q, v in pairs.items() if q not in held}
        test_d, test_y = stack(pairs, test_ids)
        tested_on = f"{len(test_ids)} NQ questions'"
    else:
        test = load_beir(SCIFACT, "test")
        test_run = run_model(test, spec, embedder)
        train_pairs = per_query_pairs(train_run(), train)
        test_d, test_y = calibration_pairs(test_run, test)
        tested_on = "SciFact test"
    bundled_ece = expected_calibration_error(bundled(test_d), test_y)
    print(f"bundled calibrator (fitted on SciFact train): ECE {bundled_ece:.3f}; test hits {len(test_y)}, "
          f"relevant {test_y.mean():.3f}", flush=True)
    ks = [5, 25] if args.quick else [*KS, len(train_pairs)]
    rows = curve(train_pairs, test_d, test_y, ks, 3 if args.quick else args.draws)
    result: dict = {"model": "GaussianEncoder() (bundled)", "corpus": args.corpus, "test_pairs": len(test_y),
                    "test_relevant_rate": float(test_y.mean()), "bundled_ece": bundled_ece, "curve": rows}
    if not (args.quick or args.no_hybrid):
        result["hybrid"] = hybrid_comparison(train_run(), train, test_run, test, bundled)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_curve.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    plot(rows, out / "calibration_curve.png", tested_on, bundled_ece)
    print(f"wrote {out / 'calibration_curve.png'} and calibration_curve.json")


if __name__ == "__main__":
    main()
