"""ragcun-train end to end on the tiny model: objectives, frozen cache, resume, NaN stop, full fine-tuning, outputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer

from ragcun import GaussianEncoder
from ragcun.losses import GaussianRAGLoss
from ragcun_train import train
from ragcun_train.cli import main
from ragcun_train.frozen import NonFiniteLossError
from ragcun_train.objectives import CLOSED_FORM_OBJECTIVES, ENCODER_OBJECTIVES, PRESETS

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon".split()


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory) -> Path:
    """A 60-document BEIR folder: 40 training qrels, 10 test qrels; a query is 3 words of its document."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("beir")
    (root / "qrels").mkdir()
    docs = [" ".join(rng.choices(WORDS, k=10)) for _ in range(60)]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(docs)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": " ".join(d.split()[:3])}) + "\n" for i, d in enumerate(docs[:50])))
    header = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "train.tsv").write_text(header + "".join(f"q{i}\td{i}\t1\n" for i in range(40)))
    (root / "qrels" / "test.tsv").write_text(header + "".join(f"q{i}\td{i}\t1\n" for i in range(40, 50)))
    return root


def _run(model_dir, data, tmp_path, name="out", **options):
    opts = dict(model=model_dir, output=str(tmp_path / name), cache_dir=str(tmp_path / "cache"), batch_size=8,
                max_steps=4, isotropy_sample=64, num_slices=32, show_progress=False) | options
    return train(data, **opts)


def _head_state(model: GaussianEncoder) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.head_parameters()]


@pytest.mark.parametrize("objective", [o for o in PRESETS if o not in (*ENCODER_OBJECTIVES, *CLOSED_FORM_OBJECTIVES)])
# distil: tests/training/test_distil.py; similarity: tests/training/test_train_similarity.py
def test_each_objective_trains_and_reports(tiny_model_dir, beir_dir, tmp_path, objective):
    result = _run(tiny_model_dir, beir_dir, tmp_path, objective=objective)
    report = json.loads((result.output / "training_report.json").read_text())
    weights = {k: v for k, v in PRESETS[objective].items() if v}
    assert len(report["steps"]) == 4
    assert set(weights) <= set(report["steps"][0]) and all(np.isfinite(s["loss"]) for s in report["steps"])
    for when in ("before", "after"):
        assert 0 <= report[when]["ndcg@10"] <= 1 and report[when]["isotropy"]["dim"] == 32
    assert report["eval"]["split"] == "test" and report["base"]["ndcg@10"] == pytest.approx(report["before"]["ndcg@10"])
    assert (result.output / "loss_curves.png").stat().st_size > 1000 and (result.output / "isotropy_before_after.png").is_file()
    if objective == "jepa":
        assert (result.output / "jepa_predictor" / "model.safetensors").is_file()


def test_second_frozen_run_does_not_call_the_transformer(tiny_model_dir, beir_dir, tmp_path, monkeypatch):
    first = _run(tiny_model_dir, beir_dir, tmp_path, name="a")
    assert first.report["cache"]["misses"] > 0

    def forbidden(*args, **kwargs):
        raise AssertionError("the transformer ran although every text was cached")

    monkeypatch.setattr(Transformer, "forward", forbidden)
    second = _run(tiny_model_dir, beir_dir, tmp_path, name="b")
    assert second.report["cache"]["misses"] == 0 and second.report["cache"]["hits"] > 0
    assert second.report["after"]["ndcg@10"] == first.report["after"]["ndcg@10"]  # --seed: the same result twice
    for a, b in zip(_head_state(first.model), _head_state(second.model)):
        assert torch.equal(a, b)


def test_resume_after_an_interrupted_run_matches_an_uninterrupted_one(tiny_model_dir, beir_dir, tmp_path, monkeypatch):
    full = _run(tiny_model_dir, beir_dir, tmp_path, name="full", max_steps=6, objective="jepa")
    real = GaussianRAGLoss.compute_loss_from_embeddings
    calls = {"n": 0}

    def crash_at_step_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(GaussianRAGLoss, "compute_loss_from_embeddings", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_model_dir, beir_dir, tmp_path, name="cut", max_steps=6, save_steps=3, objective="jepa")
    monkeypatch.setattr(GaussianRAGLoss, "compute_loss_from_embeddings", real)
    assert (tmp_path / "cut" / "checkpoints" / "step-3").is_dir()
    resumed = _run(tiny_model_dir, beir_dir, tmp_path, name="cut", max_steps=6, save_steps=3, objective="jepa", resume=True)
    assert [s["step"] for s in resumed.report["steps"]] == list(range(1, 7))
    assert resumed.report["steps"][-1]["loss"] == pytest.approx(full.report["steps"][-1]["loss"], rel=1e-5)
    for a, b in zip(_head_state(full.model), _head_state(resumed.model)):
        assert torch.allclose(a, b, atol=1e-6)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tiny_model_dir, beir_dir, tmp_path, monkeypatch):
    real = GaussianRAGLoss.compute_loss_from_embeddings
    calls = {"n": 0}

    def nan_at_step_3(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        return {k: v * float("nan") for k, v in out.items()} if calls["n"] == 3 else out

    monkeypatch.setattr(GaussianRAGLoss, "compute_loss_from_embeddings", nan_at_step_3)
    with pytest.raises(NonFiniteLossError, match=r"step 3: the loss is nan.*step-2"):
        _run(tiny_model_dir, beir_dir, tmp_path, max_steps=5, save_steps=2)
    assert (tmp_path / "out" / "checkpoints" / "step-2" / "state.safetensors").is_file()


def test_output_loads_through_all_three_entry_points(tiny_model_dir, beir_dir, tmp_path):
    result = _run(tiny_model_dir, beir_dir, tmp_path, output_dim=16)
    texts = ["alpha beta gamma", "delta epsilon"]
    expected = result.model.encode(texts)
    out = str(result.output)
    assert np.allclose(GaussianEncoder(out).encode(texts), expected, atol=1e-5)
    plain = SentenceTransformer(out)
    assert plain.similarity_fn_name == "euclidean" and np.allclose(plain.encode(texts), expected, atol=1e-5)
    embeddings = pytest.importorskip("llama_index.embeddings.ragcun")
    emb = embeddings.GaussianEmbedding(model_name=out)
    assert np.allclose(emb.get_text_embedding(texts[0]), expected[0], atol=1e-5)
    assert (result.output / "README.md").is_file()


def test_recentred_output_has_zero_mean_and_unit_variance_on_the_corpus(tiny_model_dir, beir_dir, tmp_path):
    result = _run(tiny_model_dir, beir_dir, tmp_path)
    iso = result.report["after"]["isotropy"]
    assert iso["variance_mean"] == pytest.approx(1.0, abs=0.05) and iso["mean_norm"] < 0.05
    assert result.report["recentred"]["scale"] > 0


def test_full_fine_tuning_with_frozen_layers_and_evaluators(tiny_model_dir, beir_dir, tmp_path):
    start = GaussianEncoder(tiny_model_dir)
    embeddings_before = start[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    result = _run(tiny_model_dir, beir_dir, tmp_path, freeze_base=False, freeze_layers=1, eval_steps=2, save_steps=2, lr=1e-3)
    model = result.model
    assert torch.equal(model[0].auto_model.embeddings.word_embeddings.weight, embeddings_before)
    steps = result.report["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4] and {"contrastive", "isotropy"} <= set(steps[0])
    evaluations = result.report["evaluations"]
    assert [e["step"] for e in evaluations] == [2, 4]
    assert evaluations[0]["eval_isotropy_sigreg"] > 0 and 0 <= evaluations[0]["eval_dev_neg_l2_ndcg@10"] <= 1
    assert result.report["after"]["ndcg@10"] is not None
    assert sorted(p.name for p in (result.output / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_cli_runs_and_prints_before_after(tiny_model_dir, beir_dir, tmp_path, capsys):
    status = main([str(beir_dir), "--model", tiny_model_dir, "--output", str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "c"),
                   "--max-steps", "2", "--batch-size", "8", "--lambda-isotropy", "0.25", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0 and "nDCG@10" in out and "before" in out and "after" in out
    report = json.loads((tmp_path / "cli" / "training_report.json").read_text())
    assert report["config"]["weights"]["isotropy"] == 0.25
    assert main([str(tmp_path / "nope.jsonl"), "--model", tiny_model_dir]) == 2
    assert "does not exist" in capsys.readouterr().err


def _status(argv: list[str]) -> int:
    """``main(argv)``'s exit status, argparse's own exits included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragcun-train: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("args", "named"), [
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "0"], "--epochs"),
    (["--max-steps", "0"], "--max-steps"),
    (["--lr=-1e-3"], "--lr"),
    (["--batch-size", "x"], "--batch-size"),
    (["--temperature", "nan"], "--temperature"),
    (["--lambda-isotropy", "inf"], "λ of isotropy"),
    (["--isotropy-sample", "1"], "--isotropy-sample"),
    (["--save-steps", "0"], "--save-steps"),
    (["--seed", "-1"], "--seed"),
    (["--output-dim", "0"], "--output-dim"),
    (["--overwrite", "--resume"], "--overwrite"),
    (["--device", "tpu9"], "--device 'tpu9'"),
])
def test_bad_arguments_are_one_error_line_before_anything_loads(tmp_path, capsys, monkeypatch, args, named):
    import ragcun_train.api as api
    import ragcun_train.distil as distil
    import ragcun_train.rows as rows

    monkeypatch.setattr(api, "GaussianEncoder", None)  # loading a model would fail with a TypeError
    monkeypatch.setattr(rows, "load_training_set", None)  # so would loading labelled data
    monkeypatch.setattr(distil, "load_documents", None)  # or a corpus to distil on
    assert _status(["--output", str(tmp_path / "out"), *args]) == 2
    assert named in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_bad_data_is_one_error_line_naming_file_and_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"query,positive\nq1,p1\n\xff\xfe garbage\n")
    assert main([str(bad), "--model", tiny_model_dir, "--output", str(tmp_path / "out")]) == 2
    assert f"{bad}:3: not UTF-8" in _one_error_line(capsys)
    txt = tmp_path / "docs.txt"
    txt.write_text("some document text here\n")
    assert main([str(txt), "--format", "pairs", "--output", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert "--format pairs" in line and "header" not in line


def test_a_previous_run_in_output_is_refused_unless_overwrite_or_resume(tiny_model_dir, beir_dir, tmp_path, capsys):
    first = _run(tiny_model_dir, beir_dir, tmp_path, max_steps=4, save_steps=1, objective="jepa")
    out = first.output
    assert (out / "checkpoints" / "step-3").is_dir() and (out / "jepa_predictor").is_dir()
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="already holds a previous run .*--overwrite.*--resume"):
        _run(tiny_model_dir, beir_dir, tmp_path, max_steps=2)
    argv = [str(beir_dir), "--model", tiny_model_dir, "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--max-steps", "2", "--batch-size", "8", "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 2
    assert "already holds a previous run" in _one_error_line(capsys)
    assert (out / "model.safetensors").read_bytes() == before  # untouched
    second = _run(tiny_model_dir, beir_dir, tmp_path, max_steps=2, save_steps=1, overwrite=True)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-1"]  # none of the previous run's
    assert not (out / "jepa_predictor").exists()  # the previous model's parts are gone with it
    assert np.allclose(GaussianEncoder(str(out)).encode(["alpha beta"]), second.model.encode(["alpha beta"]), atol=1e-5)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="no ragcun-train run wrote"):
        _run(tiny_model_dir, beir_dir, tmp_path, name="mine", overwrite=True)


def test_the_saved_model_card_is_ragcun_s_own(tiny_model_dir, beir_dir, tmp_path):
    result = _run(tiny_model_dir, beir_dir, tmp_path, objective="jepa")
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "ragcun Gaussian embedding model" in card and "objective: jepa (isotropy λ=1.5, predictive λ=1.2)" in card
    assert f"training data: {beir_dir} (beir): 40 training rows, 60 corpus documents" in card
    assert "| after |" in card and "| before |" in card and "must NOT be" in card
    assert f'GaussianEncoder("{result.output}")' in card and "GaussianEmbeddings(" in card
    assert "F.normalize" not in card and "Normalize embeddings" not in card and "cosine_similarity" not in card


def test_the_default_trains_on_the_bundled_demo(tiny_model_dir, tmp_path):
    result = _run(tiny_model_dir, None, tmp_path, max_steps=2)
    data = result.report["data"]
    assert data["rows"] < 919 and data["held_back_queries"] == 81 and result.report["eval"]["split"] == "test"
    assert result.report["eval"]["queries"] == 100


def test_full_fine_tuning_resumes_from_its_trainer_checkpoint(tiny_model_dir, beir_dir, tmp_path):
    options = dict(freeze_base=False, save_steps=2, lr=1e-3)
    _run(tiny_model_dir, beir_dir, tmp_path, max_steps=4, **options)
    resumed = _run(tiny_model_dir, beir_dir, tmp_path, max_steps=6, resume=True, **options)
    assert [s["step"] for s in resumed.report["steps"]] == [5, 6]
