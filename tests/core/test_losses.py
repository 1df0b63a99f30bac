"""ragcun's losses under sentence-transformers' trainer and model.fit on a tiny random model."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from ragcun import GaussianEncoder, covariance_isotropy
from ragcun.losses import (
    CovarianceIsotropyLoss,
    EuclideanInfoNCELoss,
    EuclideanMarginLoss,
    GaussianRAGLoss,
    JEPAPredictiveLoss,
    JEPAPredictor,
    SIGRegLoss,
)
from ragcun.stats.sigreg import sigreg

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon".split()


def _pairs(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    anchors, positives = [], []
    for _ in range(n):
        words = rng.choice(WORDS, size=6)
        anchors.append(" ".join(words[:3]))
        positives.append(" ".join(words))
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def _held_out(model: GaussianEncoder) -> torch.Tensor:
    return torch.tensor(model.encode(list(_pairs(160, seed=99)["positive"])))


def _held_out_sigreg(model: GaussianEncoder) -> float:
    return float(sigreg(_held_out(model), num_slices=64, step=12345))


def _held_out_covariance_loss(model: GaussianEncoder) -> float:
    x = _held_out(model)
    return float(covariance_isotropy(x) + (x.std() - 1.0).square())


def _train(model, loss, tmp_path, steps: int = 20, lr: float = 1e-2, batch_size: int = 16) -> list[float]:
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=lr,
        logging_steps=1, save_strategy="no", report_to=[], seed=0, use_cpu=True, disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=_pairs(320, seed=0), loss=loss)
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def _first_last(losses: list[float], k: int = 5) -> tuple[float, float]:
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))


@pytest.mark.parametrize(
    ("make_loss", "held_out_metric"),
    [
        (lambda m: SIGRegLoss(m, num_slices=64), _held_out_sigreg),
        # second moments only: it is judged on its own objective on held-out texts, not on SIGReg
        (lambda m: CovarianceIsotropyLoss(m), _held_out_covariance_loss),
    ],
    ids=["sigreg", "covariance"],
)
def test_isotropy_losses_lower_loss_and_held_out_statistic(tiny_model_dir, tmp_path, make_loss, held_out_metric):
    torch.manual_seed(0)
    model = GaussianEncoder(tiny_model_dir, head="mlp")
    before = held_out_metric(model)
    losses = _train(model, make_loss(model), tmp_path, batch_size=32)
    first, last = _first_last(losses)
    assert last < first
    assert held_out_metric(model) < before


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda m: EuclideanInfoNCELoss(m),
        lambda m: EuclideanMarginLoss(m, margin=2.0),
        lambda m: GaussianRAGLoss(m, num_slices=64),
    ],
    ids=["infonce", "margin", "gaussian-rag"],
)
def test_retrieval_losses_lower_loss(tiny_model_dir, tmp_path, make_loss):
    torch.manual_seed(0)
    model = GaussianEncoder(tiny_model_dir, head="mlp")
    losses = _train(model, make_loss(model), tmp_path)
    first, last = _first_last(losses)
    assert last < first


def test_gaussian_rag_lowers_held_out_sigreg_and_reports_components(tiny_model_dir, tmp_path):
    torch.manual_seed(0)
    model = GaussianEncoder(tiny_model_dir, head="mlp")
    loss = GaussianRAGLoss(model, isotropy_weight=1.0, num_slices=64)
    before = _held_out_sigreg(model)
    _train(model, loss, tmp_path, steps=20)
    assert _held_out_sigreg(model) < before
    batch = _pairs(8, seed=3)
    features = [model.tokenize(list(batch[c])) for c in ("anchor", "positive")]
    components = loss(features, None)
    assert set(components) == {"contrastive", "isotropy"}
    assert loss.get_config_dict()["weights"] == {"contrastive": 1.0, "isotropy": 1.0}


def test_jepa_predictor_trains_and_is_saved(tiny_model_dir, tmp_path):
    torch.manual_seed(0)
    model = GaussianEncoder(tiny_model_dir, head="mlp")
    loss = JEPAPredictiveLoss(model, symmetric=True)
    before = [p.detach().clone() for p in loss.predictor.parameters()]
    _train(model, loss, tmp_path / "run", steps=10)
    after = list(loss.predictor.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after)), "the predictor's weights did not train"
    model.save(str(tmp_path / "saved"))
    reloaded = JEPAPredictor.load(tmp_path / "saved" / "jepa_predictor")
    x = torch.randn(3, model.get_embedding_dimension())
    assert torch.allclose(reloaded(x), loss.predictor(x))


def test_model_fit_trains_with_our_loss(tiny_model_dir, tmp_path, monkeypatch):
    from sentence_transformers.sentence_transformer.readers import InputExample
    from torch.utils.data import DataLoader

    monkeypatch.chdir(tmp_path)  # model.fit writes checkpoints/ into the working directory
    torch.manual_seed(0)
    model = GaussianEncoder(tiny_model_dir, head="mlp")
    pairs = _pairs(64, seed=0)
    examples = [InputExample(texts=[a, p]) for a, p in zip(pairs["anchor"], pairs["positive"])]
    loader = DataLoader(examples, batch_size=16, shuffle=True)
    before = _held_out_sigreg(model)
    model.fit(train_objectives=[(loader, SIGRegLoss(model, num_slices=64))], epochs=5, optimizer_params={"lr": 1e-2}, show_progress_bar=False)
    assert _held_out_sigreg(model) < before


def test_losses_name_bad_batches(tiny_model_dir):
    model = GaussianEncoder(tiny_model_dir)
    x = [torch.randn(4, 32)]
    with pytest.raises(ValueError, match="positive"):
        EuclideanInfoNCELoss(model).compute_loss_from_embeddings(x)
    with pytest.raises(ValueError, match="at least 2"):
        EuclideanMarginLoss(model).compute_loss_from_embeddings([torch.randn(1, 32), torch.randn(1, 32)])
    with pytest.raises(ValueError, match="non-zero"):
        GaussianRAGLoss(model, contrastive_weight=0, isotropy_weight=0)


def test_gaussian_rag_loss_gives_corpus_negatives_to_ranking_and_the_corpus_sample_to_distribution_components(tiny_model_dir):
    model = GaussianEncoder(tiny_model_dir)
    loss = GaussianRAGLoss(model, contrastive_weight=1.0, isotropy_weight=0.0, covariance_weight=2.0, margin_weight=3.0,
                           predictive_weight=0.5)
    torch.manual_seed(0)
    columns = [torch.randn(6, 32), torch.randn(6, 32)]
    negatives, sample = torch.randn(20, 32), torch.randn(10, 32)
    got = loss.compute_loss_from_embeddings(columns, corpus_negatives=negatives, corpus_sample=sample)
    parts = loss.components
    expected = {
        "contrastive": parts["contrastive"].compute_loss_from_embeddings([*columns, negatives]),
        "margin": 3.0 * parts["margin"].compute_loss_from_embeddings([*columns, negatives]),
        "covariance": 2.0 * parts["covariance"].compute_loss_from_embeddings([*columns, sample]),
        "predictive": 0.5 * parts["predictive"].compute_loss_from_embeddings(columns),
    }
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.allclose(got[name], value), name
    plain = loss.compute_loss_from_embeddings(columns)
    assert not torch.allclose(plain["contrastive"], got["contrastive"]) and torch.allclose(plain["predictive"], got["predictive"])
    empty = loss.compute_loss_from_embeddings(columns, corpus_negatives=torch.empty(0, 32), corpus_sample=torch.empty(0, 32))
    assert all(torch.allclose(empty[k], plain[k]) for k in plain)


LOSSES = [CovarianceIsotropyLoss, EuclideanInfoNCELoss, EuclideanMarginLoss, GaussianRAGLoss, JEPAPredictiveLoss, SIGRegLoss]


@pytest.mark.parametrize("loss_class", LOSSES, ids=lambda c: c.__name__)
def test_each_loss_documents_itself_as_sentence_transformers_losses_do(loss_class):
    doc = loss_class.__doc__ or ""
    sections = [line.strip() for line in doc.splitlines() if re.fullmatch(r"    [A-Z][a-z]+:", line)]
    assert sections == ["Args:", "References:", "Requirements:", "Inputs:", "Example:"]
    assert "| Labels |" in doc
    example = doc.split("Example:", 1)[1].split("::", 1)[1]
    code = "\n".join(line[12:] for line in example.splitlines())
    compile(code, f"{loss_class.__name__} example", "exec")
    assert f"{loss_class.__name__ if loss_class is not JEPAPredictiveLoss else 'GaussianRAGLoss'}(model" in code
