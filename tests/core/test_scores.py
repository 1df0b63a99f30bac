"""Relevance scores: range, monotonicity, calibration (uniform under the null), fits and the scorer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.distance_law import DistanceLaw, DistanceLawScorer, chi2_survival
from ragcun.store.doc_store import DocStore, Record


def _pairs_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x - y, axis=1)


def test_range_and_monotone() -> None:
    d = np.linspace(0, 20, 200)
    s = chi2_survival(d, dof=32)
    assert s[0] == 1.0 and chi2_survival(np.inf, 32) == 0.0
    assert np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s) <= 0)
    with pytest.raises(ValueError, match="non-negative"):
        chi2_survival([-1.0], 8)
    with pytest.raises(ValueError, match="non-negative"):
        chi2_survival([np.nan], 8)


def test_isotropic_score_is_uniform_for_unrelated_pairs() -> None:
    """Independent N(0, I) pairs: P(score <= t) = t, i.e. 1 - score is a valid p-value."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 4000, 64))
    s = DistanceLaw.isotropic(64)(_pairs_distances(x, y))
    assert stats.kstest(s, "uniform").pvalue > 1e-3
    assert abs(np.mean(s >= 0.9) - 0.1) < 0.02


def test_fit_recovers_scale_and_dof_and_calibrates_anisotropic_data() -> None:
    rng = np.random.default_rng(1)
    law = DistanceLaw.fit(2.0 * rng.standard_normal((3000, 48)) + 5.0, n_pairs=20000)
    assert law.source == "empirical"
    assert abs(law.dof - 48) < 5 and abs(law.scale - 4.0) < 0.4
    # strongly correlated dimensions: the isotropic law is wrong, the fit is calibrated
    mix = rng.standard_normal((48, 48)) * np.linspace(0.1, 3, 48)
    data = rng.standard_normal((3000, 48)) @ mix
    fitted = DistanceLaw.fit(data, n_pairs=20000)
    fresh = rng.standard_normal((2, 3000, 48)) @ mix
    s = fitted(_pairs_distances(fresh[0], fresh[1]))
    assert abs(np.mean(s >= 0.9) - 0.1) < 0.03
    naive = DistanceLaw.isotropic(48)(_pairs_distances(fresh[0], fresh[1]))
    assert abs(np.mean(naive >= 0.9) - 0.1) > 0.05


def test_fit_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        DistanceLaw.fit(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="identical"):
        DistanceLaw.fit(np.ones((10, 4)))


def test_scorer_modes_refit_and_roundtrip() -> None:
    rng = np.random.default_rng(2)
    index = L2Index(16)
    ids: list[str] = []

    def grow(n: int) -> None:
        new = [f"v{len(ids) + i}" for i in range(n)]
        index.add(new, 3.0 * rng.standard_normal((n, 16)))
        ids.extend(new)

    scorer = DistanceLawScorer(min_fit=32)
    grow(10)
    assert scorer.current(index, lambda: ids) == DistanceLaw.isotropic(16)
    grow(40)
    first = scorer.current(index, lambda: ids)
    assert first.source == "empirical" and first.n_vectors == 50 and 5 < first.scale < 15
    grow(5)  # +10%: kept
    assert scorer.current(index, lambda: ids) is first
    grow(20)  # +50%: refit
    assert scorer.current(index, lambda: ids).n_vectors == 75
    again = DistanceLawScorer.from_dict(scorer.to_dict())
    assert again.law == scorer.law and again.mode == "auto"
    assert DistanceLawScorer("isotropic").current(index, lambda: ids).source == "isotropic"
    with pytest.raises(ValueError, match="score mode"):
        DistanceLawScorer("cosine")


def test_threshold_admits_the_same_share_of_unrelated_docs_across_queries() -> None:
    """With the empirical law, ``score >= 0.8`` admits ~20% of unrelated docs: on average over
    queries, and for each query when query norms are equal (as the bundled model's are)."""
    rng = np.random.default_rng(3)
    store = DocStore()
    n, dim = 500, 64
    store.add([Record(f"d{i}", f"t{i}") for i in range(n)], 1.5 * rng.standard_normal((n, dim)))
    shares, fixed_norm = [], []
    for _ in range(30):
        q = 1.5 * rng.standard_normal(dim)
        hits = store.search(q, n)
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert all(0.0 <= h.score <= 1.0 for h in hits)
        shares.append(np.mean([h.score >= 0.8 for h in hits]))
        q_unit = q / np.linalg.norm(q) * 1.5 * np.sqrt(dim)
        fixed_norm.append(np.mean([h.score >= 0.8 for h in store.search(q_unit, n)]))
    assert abs(np.mean(shares) - 0.2) < 0.05, shares
    assert all(abs(s - 0.2) < 0.1 for s in fixed_norm), fixed_norm
