"""GaussianEncoder: head construction, save/load through three entry points, inits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize

from ragcun import GaussianEncoder

TEXTS = ["the cat sat on the mat", "a dog chased the ball", "stock markets fell sharply", "rain is expected tomorrow", "proteins fold into shapes", "the court ruled on appeal"]


def test_normalize_removed_and_head_appended(tiny_model_dir):
    model = GaussianEncoder(tiny_model_dir, output_dim=16, head="mlp")
    assert not isinstance(model[len(model) - 1], Normalize)
    assert model.get_embedding_dimension() == 16
    assert model.similarity_fn_name == "euclidean"
    emb = model.encode(TEXTS)
    assert emb.shape == (len(TEXTS), 16)
    assert not np.allclose(np.linalg.norm(emb, axis=1), 1.0)


@pytest.mark.parametrize("head", ["linear", "mlp", "residual"])
def test_save_load_three_ways_identical(tiny_model_dir, tmp_path, head):
    model = GaussianEncoder(tiny_model_dir, output_dim=24, head=head)
    model.eval()
    expected = model.encode(TEXTS)
    model.save(str(tmp_path))
    again = GaussianEncoder(str(tmp_path))
    plain = SentenceTransformer(str(tmp_path))
    assert len(again) == len(model), "loading a saved Gaussian model must not add a second head"
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)
    np.testing.assert_allclose(plain.encode(TEXTS), expected, atol=1e-6)
    assert plain.similarity_fn_name == "euclidean"


def test_saved_model_refuses_a_different_head(tiny_model_dir, tmp_path):
    GaussianEncoder(tiny_model_dir, output_dim=8).save(str(tmp_path))
    with pytest.raises(ValueError, match="output_dim"):
        GaussianEncoder(str(tmp_path), output_dim=16)


def test_identity_init_ranks_like_base_cosine(tiny_model_dir):
    model = GaussianEncoder(tiny_model_dir).fit_identity(TEXTS)
    base = model.encode_base(TEXTS)
    assert np.allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)
    queries, docs = model.encode(TEXTS[:3]), model.encode(TEXTS)
    l2 = np.linalg.norm(queries[:, None] - docs[None], axis=-1)
    cosine = base[:3] @ base.T
    np.testing.assert_array_equal(np.argsort(l2, axis=1, kind="stable"), np.argsort(-cosine, axis=1, kind="stable"))
    assert abs(docs.mean(0)).max() < 1e-4  # centred on the fitted texts
    assert docs.var(0, ddof=0).mean() == pytest.approx(1.0, rel=1e-3)


def _perturb_residual_branch(model: GaussianEncoder) -> None:
    """Give the residual head's zero branch and identity last layer some trained-looking weights."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in [*model.head_modules()[2].parameters(), *model.head_modules()[3].parameters()]:
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_residual_head_starts_as_the_identity_linear_head(tiny_model_dir):
    residual = GaussianEncoder(tiny_model_dir, head="residual").fit_identity(TEXTS)
    assert residual.ragcun_config["init"] == "identity"
    linear = GaussianEncoder(tiny_model_dir).fit_identity(TEXTS)
    np.testing.assert_allclose(residual.encode(TEXTS), linear.encode(TEXTS), atol=1e-5)
    _perturb_residual_branch(residual)
    assert not np.allclose(residual.encode(TEXTS), linear.encode(TEXTS), atol=1e-3)


def test_residual_head_trained_weights_survive_save_load(tiny_model_dir, tmp_path):
    model = GaussianEncoder(tiny_model_dir, output_dim=16, head="residual")
    _perturb_residual_branch(model)
    model.eval()
    expected = model.encode(TEXTS)
    model.save(str(tmp_path))
    np.testing.assert_allclose(GaussianEncoder(str(tmp_path)).encode(TEXTS), expected, atol=1e-6)
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path)).encode(TEXTS), expected, atol=1e-6)


def test_residual_head_whitening_init(tiny_model_dir):
    unit = np.random.default_rng(2).standard_normal((400, 32))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    model = GaussianEncoder(tiny_model_dir, head="residual", init="whitening").fit_whitening(unit)
    out = model.apply_head(torch.tensor(unit, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(32), atol=1e-2)


def test_whitening_gives_mean_zero_covariance_identity(tiny_model_dir):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((500, 32)) * np.linspace(0.5, 2.0, 32) + 0.5
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)  # the head's input is unit-length
    model = GaussianEncoder(tiny_model_dir, init="whitening").fit_whitening(unit)
    out = model.apply_head(torch.tensor(unit, dtype=torch.float32)).detach().numpy()
    assert np.abs(out.mean(0)).max() < 1e-3
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(32), atol=1e-2)


def test_whitening_to_fewer_dimensions(tiny_model_dir):
    unit = np.random.default_rng(1).standard_normal((400, 32))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    model = GaussianEncoder(tiny_model_dir, output_dim=8).fit_whitening(unit)
    out = model.apply_head(torch.tensor(unit, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(8), atol=1e-2)


def test_bad_arguments_are_named(tiny_model_dir):
    with pytest.raises(ValueError, match="unknown head"):
        GaussianEncoder(tiny_model_dir, head="conv")
    with pytest.raises(ValueError, match="needs head='linear'"):
        GaussianEncoder(tiny_model_dir, head="mlp", init="whitening")
    with pytest.raises(ValueError, match="starts as a linear map"):
        GaussianEncoder(tiny_model_dir, head="residual", init="random")
    model = GaussianEncoder(tiny_model_dir)
    with pytest.raises(ValueError, match="shape"):
        model.fit_whitening(np.zeros((10, 5)))
    with pytest.raises(ValueError, match="NaN"):
        model.fit_identity(np.full((10, 32), np.nan))
    with pytest.raises(ValueError, match="mlp"):
        GaussianEncoder(tiny_model_dir, head="mlp").fit_whitening(TEXTS)


def test_bundled_model_default(bundled_encoder):
    emb = bundled_encoder.encode(["a b c"])
    assert emb.shape == (1, 384)
    assert abs(float(np.linalg.norm(emb)) - 1.0) > 0.5
    assert bundled_encoder.ragcun_config["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_apply_head_runs_on_the_models_device(tiny_model_dir):
    # "meta" stands in for a GPU here: base embeddings come as CPU arrays (encode_base), the head lives elsewhere
    model = GaussianEncoder(tiny_model_dir, device="cpu")
    base = torch.as_tensor(model.encode_base(["a cat", "a dog"]))
    model.to("meta")
    out = model.apply_head(base)
    assert out.device.type == "meta" and out.shape == base.shape
