"""The Gaussian head on its own (``ragcun.model.head``): layouts and shapes, ``set_affine``, the identity and
whitening maps' properties on their fitting data, and a fitted head through ``GaussianEncoder`` save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers.base.modules import Dense, Normalize
from sentence_transformers.sentence_transformer.modules import Dropout

from ragcun.model.head import HEADS, build_head, identity_map, set_affine, whitening_map


def run(modules, x: np.ndarray) -> np.ndarray:
    """The head's output for base embeddings ``x`` (N, D), in eval mode."""
    features = {"sentence_embedding": torch.tensor(x, dtype=torch.float32)}
    for module in modules:
        module.eval()
        features = module(features)
    return features["sentence_embedding"].detach().numpy()


def unit_rows(n: int, d: int, seed: int = 0, spread: bool = True) -> np.ndarray:
    """``n`` unit-length rows with unequal variances and a non-zero mean, as base embeddings have."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * (np.linspace(0.3, 2.0, d) if spread else 1.0) + 0.4
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("head", "in_dim", "out_dim", "layout"), [
    ("linear", 12, 12, [Normalize, Dense]),
    ("linear", 12, 5, [Normalize, Dense]),
    ("mlp", 12, 5, [Normalize, Dense, Dropout, Dense]),
    ("residual", 12, 5, [Normalize, Dense, Dense, Dense]),
])
def test_each_head_type_has_its_layout_and_output_shape(head, in_dim, out_dim, layout):
    modules = build_head(in_dim, out_dim, head)
    assert [type(m) for m in modules] == layout
    assert run(modules, unit_rows(7, in_dim)).shape == (7, out_dim)
    dense = [m for m in modules if isinstance(m, Dense)]
    assert dense[0].in_features == in_dim and dense[-1].out_features == out_dim
    if head == "mlp":
        assert dense[0].out_features == 2 * in_dim


def test_an_unknown_head_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown head 'deep'.*linear"):
        build_head(4, 4, "deep")
    assert HEADS == ("linear", "mlp", "residual")


@pytest.mark.parametrize("head", HEADS)
def test_the_head_normalises_its_input_first(head):
    modules = build_head(6, 4, head)
    x = unit_rows(5, 6)
    np.testing.assert_allclose(run(modules, 3.7 * x), run(modules, x), rtol=1e-5, atol=1e-6)


def test_a_new_residual_head_is_its_first_linear_map():
    residual, linear = build_head(6, 4, "residual"), build_head(6, 4, "linear")
    rng = np.random.default_rng(3)
    weight, bias = rng.standard_normal((4, 6)), rng.standard_normal(4)
    set_affine(residual[1], weight, bias)
    set_affine(linear[1], weight, bias)
    x = unit_rows(9, 6)
    np.testing.assert_allclose(run(residual, x), x @ weight.T + bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run(residual, x), run(linear, x), rtol=1e-6, atol=1e-6)


def test_set_affine_sets_the_map_and_refuses_a_wrong_shape():
    dense = build_head(5, 3, "linear")[1]
    weight, bias = np.arange(15.0).reshape(3, 5), np.array([1.0, -2.0, 0.5])
    set_affine(dense, weight, bias)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = dense({"sentence_embedding": torch.tensor(x)})["sentence_embedding"].detach().numpy()
    np.testing.assert_allclose(out, x @ weight.T + bias, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match=r"\(5, 3\).*does not fit the head's \(3, 5\) layer"):
        set_affine(dense, weight.T, bias)
    with pytest.raises(ValueError, match="does not fit"):
        set_affine(dense, weight, bias[:2])


# -- the identity map -------------------------------------------------------------------------------

def test_identity_map_is_a_scaled_identity_centring_to_unit_variance():
    x = unit_rows(300, 10)
    weight, bias = identity_map(x, 10)
    scale = weight[0, 0]
    np.testing.assert_allclose(weight, scale * np.eye(10), atol=1e-12)
    y = x @ weight.T + bias
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-10)
    assert ((y - y.mean(0)) ** 2).sum(1).mean() == pytest.approx(10.0)  # variance 1 per dimension on average


def test_identity_map_ranks_by_l2_as_the_inputs_rank_by_cosine():
    x, queries = unit_rows(200, 10), unit_rows(20, 10, seed=1)
    weight, bias = identity_map(x, 10)
    y, q = x @ weight.T + bias, queries @ weight.T + bias
    for row in range(len(queries)):
        by_cosine = np.argsort(-(x @ queries[row]), kind="stable")
        by_l2 = np.argsort(np.linalg.norm(y - q[row], axis=1), kind="stable")
        assert np.array_equal(by_cosine, by_l2)


def test_identity_map_to_fewer_dimensions_keeps_the_top_principal_directions():
    x = unit_rows(400, 10)
    weight, bias = identity_map(x, 3)
    y = x @ weight.T + bias
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-10)
    assert (y ** 2).sum(1).mean() == pytest.approx(3.0)
    basis = weight / np.linalg.norm(weight[0])
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-10)  # one scale, orthonormal directions
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(basis @ vt[:3].T), np.eye(3), atol=1e-8)


@pytest.mark.parametrize("n", [0, 1])
def test_identity_map_without_data_to_fit_assumes_mean_zero_and_total_variance_one(n):
    x = unit_rows(n, 8) if n else np.zeros((0, 8))
    weight, bias = identity_map(x, 8)
    np.testing.assert_allclose(weight, np.sqrt(8) * np.eye(8))
    np.testing.assert_allclose(bias, -weight @ (x[0] if n else np.zeros(8)))


# -- the whitening map ------------------------------------------------------------------------------

@pytest.mark.parametrize("out_dim", [10, 4])
def test_whitening_map_gives_mean_zero_and_covariance_identity_on_its_data(out_dim):
    x = unit_rows(500, 10, seed=4)
    weight, bias = whitening_map(x, out_dim, eps=1e-12)  # eps (default 1e-6) only guards zero variances
    y = x @ weight.T + bias
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(out_dim), atol=1e-6)
    if out_dim == 10:
        np.testing.assert_allclose(weight, weight.T, atol=1e-10)  # ZCA: the symmetric inverse square root


def test_whitening_map_needs_two_embeddings():
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        whitening_map(unit_rows(1, 4), 4)


def test_whitening_of_a_degenerate_direction_stays_finite():
    x = unit_rows(200, 6)
    x[:, 5] = 0.25  # a constant dimension: zero variance
    weight, bias = whitening_map(x, 6)
    assert np.isfinite(weight).all() and np.isfinite(bias).all()


def test_the_maps_run_unchanged_inside_the_torch_head():
    x = unit_rows(50, 8)
    modules = build_head(8, 8, "linear")
    weight, bias = whitening_map(x, 8)
    set_affine(modules[1], weight, bias)
    np.testing.assert_allclose(run(modules, x), x @ weight.T + bias, rtol=1e-4, atol=1e-4)


# -- through GaussianEncoder -------------------------------------------------------------------------

def test_a_whitened_head_survives_save_and_load(tiny_model_dir, tmp_path):
    from ragcun import GaussianEncoder

    x = unit_rows(300, 32, seed=5)
    model = GaussianEncoder(tiny_model_dir, output_dim=16, init="whitening").fit_whitening(x)
    model.save(str(tmp_path / "m"))
    loaded = GaussianEncoder(str(tmp_path / "m"))
    assert loaded.ragcun_config["init"] == "whitening" and loaded.ragcun_config["output_dim"] == 16
    inputs = torch.tensor(x, dtype=torch.float32)
    out = loaded.apply_head(inputs).detach().numpy()
    np.testing.assert_array_equal(out, model.apply_head(inputs).detach().numpy())
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(16), atol=1e-3)
