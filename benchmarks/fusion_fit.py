"""How ``ragcun-train`` should pick a model's hybrid weight from its held-back queries: the best weight, or the
one-standard-error rule (:func:`ragcun_train.fusion_fit.choose_alpha`), measured on the queries not fitted on.

Feeds ``docs/benchmarks.md`` ("Fitting the hybrid weight on held-back queries"). On each tuning set of
``benchmarks.fusion`` (SciFact *train* queries, NQ questions; the bundled model's candidates, fixed floors), every
query's nDCG@10 is measured at every weight of ``ragcun_train.fusion_fit.ALPHAS``. Each draw then picks ``n``
queries at random (``ragcun-train`` holds back a tenth of a labelled set), chooses a weight on them by each rule,
and scores it against the stores' default on all the *other* queries. Printed per set, ``n`` and rule: the mean
change in nDCG@10 against the default, the share of draws that lose, the 5th percentile and the median weight.

Run from the repository root: HF_HUB_OFFLINE=1 python -m benchmarks.fusion_fit [--draws 300]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import SCIFACT, print_table, require
from benchmarks.fusion import Bench, nq_set
from ragcun.store.fusion import HybridFusion
from ragcun_eval.beir import load_beir
from ragcun_eval.models import Embedder
from ragcun_train.fusion_fit import ALPHAS, DEFAULT_ALPHA, NORMALIZATION, choose_alpha

SIZES = (20, 50, 80, 200)


def best_alpha(per_query: np.ndarray) -> float:
    """The weight with the best mean (ties: the one nearest the default): the rule before the one-SE rule."""
    means = per_query.mean(axis=0)
    return max(ALPHAS, key=lambda a: (round(float(means[ALPHAS.index(a)]), 10), -abs(a - DEFAULT_ALPHA)))


def draws(scores: np.ndarray, n: int, count: int, rng: np.random.Generator) -> list[dict[str, object]]:
    """One row per rule: how its weight, chosen on ``n`` random queries, does on the others against the default."""
    default = ALPHAS.index(DEFAULT_ALPHA)
    results: dict[str, list[tuple[float, float]]] = {"best weight": [], "one standard error": []}
    for _ in range(count):
        order = rng.permutation(len(scores))
        fit, rest = scores[order[:n]], scores[order[n:]]
        for rule, choose in (("best weight", best_alpha), ("one standard error", choose_alpha)):
            alpha = choose(fit)
            results[rule].append((float(rest[:, ALPHAS.index(alpha)].mean() - rest[:, default].mean()), alpha))
    rows = []
    for rule, got in results.items():
        change, alphas = np.array([g[0] for g in got]), np.array([g[1] for g in got])
        rows.append({"queries fitted on": n, "rule": rule, "mean change": f"{change.mean():+.4f}",
                     "draws that lose": f"{np.mean(change < -1e-12):.0%}", "5th percentile": f"{np.percentile(change, 5):+.4f}",
                     "median weight": f"{np.median(alphas):.2f}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    embedder, rng = Embedder(), np.random.default_rng(args.seed)
    sets = {"SciFact train": load_beir(require(SCIFACT), "train"), "NQ": nq_set()}
    for name, data in sets.items():
        bench = Bench(data, embedder)
        scores = np.stack([bench.per_query(HybridFusion(normalization=NORMALIZATION, alpha=a)) for a in ALPHAS], axis=1)
        means = scores.mean(axis=0)
        rows = [row for n in SIZES for row in draws(scores, n, args.draws, rng)]
        print_table(rows, f"{name}: {len(scores)} queries; nDCG@10 at the default {DEFAULT_ALPHA:.2f}: "
                          f"{means[ALPHAS.index(DEFAULT_ALPHA)]:.4f}, at the set's best {ALPHAS[int(means.argmax())]:.2f}: "
                          f"{means.max():.4f}; {args.draws} draws per size")


if __name__ == "__main__":
    main()
