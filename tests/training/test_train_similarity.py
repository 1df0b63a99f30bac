"""The label-free default (``--objective similarity``): a closed-form similarity transform that keeps every ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ragcun import GaussianEncoder
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Record
from ragcun_train import train
from ragcun_train.recentre import similarity_fit_head

SUBJECTS = ["The Moon", "Ocean tides", "Insulin", "The immune system", "Volcanoes", "Honey bees", "Glaciers", "Vaccines"]
CLAIMS = ["changes slowly over many years", "depends on the season and the temperature",
          "was studied in a large clinical trial", "is driven by gravity and rotation"]
QUERIES = ["what causes tides", "insulin clinical trial results", "how do vaccines train immunity",
           "bees and temperature", "glacier melting over years", "volcano eruption gravity"]


def _docs() -> list[str]:
    return [f"{s} {c}, according to report {i}." for i, (s, c) in enumerate((s, c) for s in SUBJECTS for c in CLAIMS)]


def _top10(model: GaussianEncoder, docs: list[str], mode: str) -> list[list[str]]:
    store = DocStore()
    store.add([Record(str(i), t) for i, t in enumerate(docs)], model.encode_document(docs, convert_to_numpy=True))
    vectors = model.encode_query(QUERIES, convert_to_numpy=True)
    return [[h.record.id for h in store.search(v, 10, text=q, mode=mode)] for v, q in zip(vectors, QUERIES)]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs()))
    return path


def test_default_corpus_run_keeps_every_ranking_and_improves_isotropy(bundled_encoder, corpus_file, tmp_path):
    """With the bundled model: no step trained, top-10 ids identical (dense and hybrid), isotropy better, the
    calibrator's probabilities unchanged, the card and the report saying the ranking is unchanged."""
    result = train(str(corpus_file), output=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), show_progress=False)
    report = result.report
    assert report["config"]["objective"] == "similarity" and report["steps"] == []
    assert (report["data"]["rows"], report["data"]["corpus"]) == (0, len(_docs()))  # whole documents, no rows
    assert report["transform"]["ranking"] == "unchanged" and report["transform"]["calibrator"] == "rescaled"
    loaded = GaussianEncoder(str(tmp_path / "out"))
    docs = _docs()
    for mode in ("dense", "hybrid"):
        assert _top10(loaded, docs, mode) == _top10(bundled_encoder, docs, mode)
    before, after = report["before"]["isotropy"], report["after"]["isotropy"]
    assert after["offdiag_corr_mean"] < before["offdiag_corr_mean"]
    assert after["variance_mean"] == pytest.approx(1.0, rel=0.05)

    scale = report["transform"]["distance_scale"]
    q = bundled_encoder.encode_query(QUERIES[:1], convert_to_numpy=True)
    d_old = np.linalg.norm(bundled_encoder.encode_document(docs, convert_to_numpy=True) - q, axis=1)
    d_new = np.linalg.norm(loaded.encode_document(docs, convert_to_numpy=True) - loaded.encode_query(QUERIES[:1], convert_to_numpy=True), axis=1)
    np.testing.assert_allclose(d_new, scale * d_old, rtol=1e-3)
    np.testing.assert_allclose(loaded.relevance_calibrator(d_new), bundled_encoder.relevance_calibrator(d_old), atol=1e-4)
    assert "**ranking**: UNCHANGED" in (tmp_path / "out" / "README.md").read_text()
    assert not (tmp_path / "out" / "loss_curves.png").exists()


def test_centred_run_keeps_dense_rankings_and_centres(bundled_encoder, corpus_file, tmp_path):
    """``--objective similarity-centred`` also centres: dense top-10s identical, the mean gone, and the report says
    that hybrid rankings (fixed floors from the origin) move."""
    result = train(str(corpus_file), objective="similarity-centred", output=str(tmp_path / "out"),
                   cache_dir=str(tmp_path / "cache"), show_progress=False)
    report = result.report
    assert report["transform"]["ranking"] == "dense unchanged" and report["transform"]["shift_norm"] > 0
    assert _top10(GaussianEncoder(str(tmp_path / "out")), _docs(), "dense") == _top10(bundled_encoder, _docs(), "dense")
    assert report["after"]["isotropy"]["mean_norm"] < 0.01 * report["before"]["isotropy"]["mean_norm"]
    assert "hybrid rankings with fixed floors MOVE" in (tmp_path / "out" / "README.md").read_text()


def test_similarity_fit_head_is_an_exact_similarity_transform(tiny_model_dir):
    """The folded map is s·R·y (every distance and norm × s), or with ``centre`` s·R(y − μ) (outputs centred);
    either way uncorrelated on the fitted rows with unit variance on average."""
    x = torch.nn.functional.normalize(torch.randn(200, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    plain = GaussianEncoder(tiny_model_dir)
    with torch.no_grad():
        y0 = plain.apply_head(x).double()
        info = similarity_fit_head(plain, plain.apply_head(x))
        y1 = plain.apply_head(x).double()
    s = info["distance_scale"]
    torch.testing.assert_close(torch.cdist(y1, y1), s * torch.cdist(y0, y0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y1.norm(dim=1), s * y0.norm(dim=1), rtol=1e-4, atol=1e-4)
    assert info["shift_norm"] == 0.0
    model = GaussianEncoder(tiny_model_dir)
    with torch.no_grad():
        info = similarity_fit_head(model, model.apply_head(x), centre=True)
        y1 = model.apply_head(x).double()
    torch.testing.assert_close(torch.cdist(y1, y1), info["distance_scale"] * torch.cdist(y0, y0), rtol=1e-4, atol=1e-4)
    assert float(y1.mean(0).norm()) < 1e-4
    cov = torch.cov(y1.T)
    assert float((cov - torch.diag(torch.diagonal(cov))).abs().max()) < 1e-4
    assert float(torch.diagonal(cov).mean()) == pytest.approx(1.0, rel=1e-4)
    assert torch.all(torch.diagonal(cov)[:-1] >= torch.diagonal(cov)[1:] - 1e-6)  # largest variance first
    with pytest.raises(ValueError, match="no variance"):
        similarity_fit_head(model, torch.zeros(5, 32))


def test_isotropy_only_stays_available_as_an_opt_in(tiny_model_dir, corpus_file, tmp_path):
    """``--objective isotropy-only`` still trains the head on a corpus (and reorders: no transform is claimed)."""
    result = train(str(corpus_file), objective="isotropy-only", model=tiny_model_dir, output=str(tmp_path / "out"),
                   cache_dir=str(tmp_path / "cache"), batch_size=8, max_steps=3, isotropy_sample=32, num_slices=16,
                   show_progress=False)
    assert len(result.report["steps"]) == 3 and result.report["transform"] is None
    assert result.report["config"]["weights"]["isotropy"] == 1.0
    assert "ranking unchanged" not in (tmp_path / "out" / "README.md").read_text()


def test_help_says_what_each_closed_form_objective_keeps(capsys):
    from ragcun_train.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  similarity")}
    assert "every ranking stays exactly as it was" in lines["similarity"]
    assert "centred" in lines["similarity-centred"] and "hybrid rankings move" in lines["similarity-centred"]
