"""``benchmarks.fusion_fit``'s draws score each rule's weight against the default on the queries not fitted on."""

from __future__ import annotations

import numpy as np

from benchmarks.fusion_fit import draws
from ragcun_train.fusion_fit import ALPHAS, DEFAULT_ALPHA


def _rows(scores: np.ndarray, n: int) -> dict[str, dict[str, object]]:
    return {str(row["rule"]): row for row in draws(scores, n, 20, np.random.default_rng(0))}


def test_a_weight_better_for_every_query_is_chosen_by_both_rules_and_gains_on_the_rest():
    scores = np.tile(np.linspace(0.4, 0.6, len(ALPHAS)), (100, 1))  # every query: the larger the weight, the better
    rows = _rows(scores, 10)
    gain = scores[0, -1] - scores[0, ALPHAS.index(DEFAULT_ALPHA)]
    for row in rows.values():
        assert row["mean change"] == f"{gain:+.4f}" and row["draws that lose"] == "0%" and row["median weight"] == "1.00"


def test_noise_around_the_default_moves_the_best_weight_and_not_the_one_standard_error_rule():
    rng = np.random.default_rng(1)
    scores = np.full((400, len(ALPHAS)), 0.5) + rng.normal(0, 0.2, (400, len(ALPHAS)))
    scores[:, ALPHAS.index(DEFAULT_ALPHA)] += 0.02  # the default is best over all queries, but not on every sample
    rows = _rows(scores, 20)
    assert float(str(rows["best weight"]["mean change"])) < float(str(rows["one standard error"]["mean change"])) <= 0
    assert rows["one standard error"]["median weight"] == f"{DEFAULT_ALPHA:.2f}"
