"""isotropy_report: N(0, I) passes; shifted, scaled, anisotropic and collapsed samples fail for their own reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragcun import isotropy_report

N, D = 2000, 64


def _reasons(x: np.ndarray) -> set[str]:
    return {r.split(":")[0] for r in isotropy_report(x).reasons}


@pytest.fixture(scope="module")
def gaussian() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, D)).astype(np.float32)


def test_standard_normal_passes(gaussian):
    report = isotropy_report(gaussian)
    assert report.is_isotropic, report.reasons
    assert report.sigreg < 2.0
    assert report.norm_mean == pytest.approx(np.sqrt(D), rel=0.05)
    assert report.rank_ratio > 0.9
    json.dumps(report.to_dict())


@pytest.mark.parametrize("n", [100, 300])
def test_small_standard_normal_samples_pass(n):
    x = np.random.default_rng(n).standard_normal((n, D))
    assert isotropy_report(x).is_isotropic


def test_shifted_fails_on_mean(gaussian):
    assert "mean" in _reasons(gaussian + 1.0)
    assert "variance" not in _reasons(gaussian + 1.0)


def test_scaled_fails_on_variance(gaussian):
    reasons = _reasons(gaussian * 3.0)
    assert "variance" in reasons and "mean" not in reasons and "rank" not in reasons


def test_anisotropic_fails_on_covariance(gaussian):
    scales = np.linspace(0.2, 1.6, D)  # average variance stays near 1
    reasons = _reasons(gaussian * scales / np.sqrt(np.mean(scales**2)))
    assert "covariance" in reasons and "variance" not in reasons


def test_collapsed_fails_on_rank(gaussian):
    rng = np.random.default_rng(1)
    collapsed = gaussian[:, :2] @ rng.standard_normal((2, D)) / np.sqrt(2)
    assert "rank" in _reasons(collapsed)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="NaN"):
        isotropy_report(np.full((10, 4), np.nan))
    with pytest.raises(ValueError, match="shape"):
        isotropy_report(np.zeros(5))
