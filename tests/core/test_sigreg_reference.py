"""ragcun.stats.sigreg reproduces the official LeJEPA code's outputs (../shared/reference)."""

from __future__ import annotations

import json

import pytest
import torch
from repo_paths import shared_path

from ragcun.stats.isotropy import covariance_isotropy
from ragcun.stats.sigreg import epps_pulley, sigreg, slice_projections, sliced_epps_pulley

TOL = 1e-5


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(shared_path("reference", "lejepa_sigreg_vectors.json").read_text())


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _close(actual: torch.Tensor, expected) -> None:
    expected = _t(expected)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, rtol=TOL, atol=TOL), (actual - expected).abs().max()


CASES = ["standard_normal", "shifted_mean_2", "scaled_std_3", "uniform_0_1", "collapsed_rank1", "anisotropic"]


@pytest.mark.parametrize("case", CASES)
def test_sliced_statistics_match(reference, case):
    x, a = _t(reference["cases"][case]["x"]), _t(reference["A"])
    stats = sliced_epps_pulley(x, a)
    _close(stats, reference["cases"][case]["sliced_stats"])
    assert abs(float(stats.mean()) - reference["cases"][case]["sliced_mean"]) <= TOL * max(1, reference["cases"][case]["sliced_mean"])


@pytest.mark.parametrize("case", CASES)
def test_column_statistics_match(reference, case):
    _close(epps_pulley(_t(reference["cases"][case]["x"])), reference["cases"][case]["column_stats"])


@pytest.mark.parametrize("case", CASES)
def test_covariance_isotropy_matches(reference, case):
    value = covariance_isotropy(_t(reference["cases"][case]["x"]))
    assert abs(float(value) - reference["cases"][case]["covariance_isotropy"]) <= TOL


def test_step0_projection_matches(reference):
    p = reference["params"]
    _close(slice_projections(p["D"], p["K"], step=0), reference["generator_projection_step0"])


def test_slicing_module_mean_matches(reference):
    p = reference["params"]
    value = sigreg(_t(reference["cases"]["standard_normal"]["x"]), num_slices=p["K"], step=0)
    assert abs(float(value) - reference["slicing_module_step0_standard_normal_mean"]) <= TOL


def test_params_are_the_official_defaults(reference):
    from ragcun.stats.sigreg import N_POINTS, T_MAX

    assert (T_MAX, N_POINTS) == (reference["params"]["t_max"], reference["params"]["n_points"])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="dimension"):
        sliced_epps_pulley(torch.randn(10, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="odd"):
        epps_pulley(torch.randn(10, 4), n_points=16)
