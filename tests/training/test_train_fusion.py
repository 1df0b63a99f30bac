"""ragcun-train on labels fits the hybrid dense weight on the held-back queries and saves it with the model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from ragcun import GaussianEncoder
from ragcun.scoring.fusion_settings import FILE, FusionSettings
from ragcun_train import train
from ragcun_train.fusion_fit import ALPHAS, NORMALIZATION, choose_alpha

WORDS = ("river forest granite copper violin harbour lantern meadow orchid pepper quartz saddle tundra walnut yarrow "
         "zephyr anchor bramble cinder dune").split()


@pytest.fixture(scope="module")
def labelled_dir(tmp_path_factory) -> Path:
    """120 labelled queries (3 words of their document) over 150 documents: 20 are held back."""
    rng = random.Random(1)
    root = tmp_path_factory.mktemp("labelled")
    (root / "qrels").mkdir()
    docs = [" ".join(rng.choices(WORDS, k=8)) + f" item{i}" for i in range(150)]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": " ".join(docs[i].split()[:3])}) + "\n"
                                                for i in range(120)))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(120)))
    return root


def test_labelled_run_fits_and_saves_the_fusion_weight(tiny_model_dir, labelled_dir, tmp_path):
    opts = dict(model=tiny_model_dir, output=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), batch_size=8,
                max_steps=2, isotropy_sample=32, num_slices=16, show_progress=False)
    result = train(labelled_dir, **opts)
    saved = json.loads((tmp_path / "out" / FILE).read_text())
    assert 0.0 <= saved["alpha"] <= 1.0 and saved["alpha"] in ALPHAS and saved["normalization"] == NORMALIZATION
    fitted = saved["fitted_on"]
    assert fitted["held_out_queries"] == 20 and fitted["corpus_documents"] == 150
    curve = fitted["ndcg@10_by_alpha"]
    assert len(curve) == len(ALPHAS) and fitted["rule"] == "one standard error"
    assert curve[f"{fitted['best_alpha']:.2f}"] == max(curve.values()) >= curve[f"{saved['alpha']:.2f}"]
    loaded = GaussianEncoder(str(tmp_path / "out")).fusion_settings
    assert loaded == FusionSettings(saved["alpha"], NORMALIZATION, fitted) == result.model.fusion_settings
    assert result.report["fusion"]["alpha"] == saved["alpha"]
    hybrid = result.report["calibrator"]["hybrid"]  # fitted on the held-back queries' hybrid hits at that weight
    assert hybrid["n_pairs"] == 20 * 10 and hybrid["bm25"] > 0
    assert GaussianEncoder(str(tmp_path / "out")).relevance_calibrator.hybrid.bm25 == hybrid["bm25"]
    assert "hybrid fusion (`ragcun_fusion.json`" in (tmp_path / "out" / "README.md").read_text()
    assert f"hybrid dense weight alpha {saved['alpha']:.2f} ({NORMALIZATION})" in (tmp_path / "out" / "README.md").read_text()

    again = train(labelled_dir, **opts | {"overwrite": True, "calibrate": False})
    assert again.report["fusion"] is None and not (tmp_path / "out" / FILE).exists()  # nothing held back: nothing fitted
    assert GaussianEncoder(str(tmp_path / "out")).fusion_settings is None


def test_choose_alpha_moves_from_the_default_only_by_more_than_one_standard_error() -> None:
    alphas, noise = (0.6, 0.7, 0.8, 0.9), np.array([0.1, -0.1, 0.1, -0.1])
    clear = np.stack([np.full(4, 0.50), np.full(4, 0.55), np.full(4, 0.60), np.full(4, 0.70)], axis=1) + noise[:, None]
    assert choose_alpha(clear, alphas, 0.8) == 0.9  # every query gains 0.10 at 0.9: the difference has no spread
    noisy = np.stack([np.full(4, 0.5), np.full(4, 0.5), np.full(4, 0.6), 0.6 + np.array([0.3, -0.2, 0.2, -0.2])], axis=1)
    assert noisy.mean(axis=0).argmax() == 3 and choose_alpha(noisy, alphas, 0.8) == 0.8  # best by 0.025 ± 0.12
    assert choose_alpha(clear[:1], alphas, 0.8) == 0.8  # one query never moves it
    tie = np.stack([np.full(4, 0.7), np.full(4, 0.5), np.full(4, 0.5), np.full(4, 0.7)], axis=1)
    assert choose_alpha(tie, alphas, 0.8) == 0.9  # the nearest of the equally good


def test_ragcun_eval_hybrid_rows_use_a_models_fitted_weight(tiny_model_dir, tmp_path):
    """``ragcun-eval``'s hybrid rows rank with the model's fitted weight unless ``--alpha`` is given."""
    from ragcun_eval.beir import BeirDataset
    from ragcun_eval.models import Embedder, ModelSpec
    from ragcun_eval.retrieval import run_model

    model = GaussianEncoder(tiny_model_dir)
    model.fusion_settings = FusionSettings(0.0, NORMALIZATION, {"source": "test"})
    model.save(str(tmp_path / "fitted"))
    rng = random.Random(2)
    docs = [" ".join(rng.choices(WORDS, k=8)) for _ in range(60)]
    data = BeirDataset("toy", [f"d{i}" for i in range(60)], docs,
                       {f"q{i}": " ".join(docs[i].split()[:2]) for i in range(20)}, {f"q{i}": {f"d{i}": 1} for i in range(20)})
    spec, embedder = ModelSpec("fitted", str(tmp_path / "fitted"), "hybrid", True), Embedder(tmp_path / "cache")
    fitted = run_model(data, spec, embedder).ranked
    assert fitted == run_model(data, spec, embedder, alpha=0.0).ranked
    assert fitted != run_model(data, spec, embedder, alpha=1.0).ranked
