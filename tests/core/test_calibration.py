"""Relevance calibrators: the fit recovers a known law, bad input is refused, files round-trip and stores use them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.io.saves import SaveFormatError
from ragcun.scoring.calibrator import FILE, RelevanceCalibrator
from ragcun.store.doc_store import DocStore, Record, score_settings


def _planted(n: int = 20_000, intercept: float = 3.0, slope: float = -0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = np.sqrt(rng.uniform(0, 16, n))
    p = 1 / (1 + np.exp(-(intercept + slope * d * d)))
    return d, rng.random(n) < p


def test_fit_recovers_a_planted_logistic_law() -> None:
    d, y = _planted()
    cal = RelevanceCalibrator.fit(d, y, fitted_on="planted")
    assert cal.intercept == pytest.approx(3.0, abs=0.15) and cal.slope == pytest.approx(-0.5, abs=0.03)
    assert cal.n_pairs == len(d) and cal.n_relevant == int(y.sum()) and cal.fitted_on == "planted"
    p = cal(np.array([0.0, 1.0, 2.0, np.inf]))
    assert np.all(np.diff(p) < 0) and p[-1] == 0.0 and 0.9 < p[0] < 1.0


def test_fit_refuses_what_it_cannot_calibrate() -> None:
    d, y = _planted(200)
    with pytest.raises(ValueError, match="at least 20"):
        RelevanceCalibrator.fit(d[:5], y[:5])
    with pytest.raises(ValueError, match="both"):
        RelevanceCalibrator.fit(d, np.ones_like(y))
    with pytest.raises(ValueError, match="3 labels"):
        RelevanceCalibrator.fit(d, y[:3])
    with pytest.raises(ValueError, match="non-negative"):
        RelevanceCalibrator.fit(np.r_[d[:-1], np.nan], y)
    with pytest.raises(ValueError, match="does not fall with distance"):
        RelevanceCalibrator.fit(d, d > np.median(d))  # the farther, the more relevant
    with pytest.raises(ValueError, match="negative"):
        RelevanceCalibrator(1.0, 0.1)
    with pytest.raises(ValueError, match="finite"):
        RelevanceCalibrator(float("nan"), -1.0)
    with pytest.raises(ValueError, match="non-negative"):
        RelevanceCalibrator(1.0, -1.0)([-1.0])


def test_save_load_round_trip_and_corrupt_files(tmp_path: Path) -> None:
    cal = RelevanceCalibrator.fit(*_planted(500), fitted_on="planted")
    assert RelevanceCalibrator.load(tmp_path) is None  # a model without one
    path = cal.save(tmp_path)
    assert path == tmp_path / FILE and RelevanceCalibrator.load(tmp_path) == cal
    assert [p.name for p in tmp_path.iterdir()] == [FILE]  # no temporary file left behind
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{FILE}: corrupt"):
        RelevanceCalibrator.load(tmp_path)
    for broken, match in (({**cal.to_dict(), "slope": "x"}, "'slope' has the wrong type"),
                          ({**cal.to_dict(), "slope": 0.5}, "slope must be negative"),
                          ({k: v for k, v in cal.to_dict().items() if k != "intercept"}, "exactly"),
                          ({**cal.to_dict(), "format": "other"}, "not a ragcun.RelevanceCalibrator")):
        path.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=match):
            RelevanceCalibrator.load(tmp_path)


def test_score_settings() -> None:
    cal = RelevanceCalibrator(2.0, -0.1)
    assert score_settings(None, cal)[1] is cal and score_settings("relevance", cal)[1] is cal
    assert score_settings(None, None)[1] is None and score_settings(None, None)[0].mode == "auto"
    scorer, chosen = score_settings("isotropic", cal)
    assert chosen is None and scorer.mode == "isotropic"  # a distance-law mode leaves the calibrator unused

    class Model:
        relevance_calibrator = cal

    assert score_settings(None, Model())[1] is cal  # a model carrying one
    with pytest.raises(ValueError, match="needs a relevance calibrator"):
        score_settings("relevance", None)
    with pytest.raises(ValueError, match="score_mode must be one of"):
        score_settings("probability", cal)
    with pytest.raises(TypeError, match="RelevanceCalibrator"):
        score_settings(None, {"intercept": 1.0})


def test_doc_store_scores_are_the_calibrated_probability_in_every_mode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((40, 8)).astype(np.float32)
    texts = [f"document number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(40)]
    cal = RelevanceCalibrator(4.0, -0.2)
    store = DocStore(L2Index(8), calibrator=cal)
    store.add([Record(f"d{i}", t) for i, t in enumerate(texts)], vecs)
    q = vecs[3] + 0.1
    for mode in ("dense", "hybrid", "lexical"):
        hits = store.search(q, 5, text="cats", mode=mode)
        np.testing.assert_allclose([h.score for h in hits], cal(np.array([h.distance for h in hits])), rtol=1e-6)
    assert store.search(None, 3, text="cats", mode="lexical")[0].score <= 1.0  # no vector: the fused score
    store.save(tmp_path / "s")
    loaded, _ = DocStore.load(tmp_path / "s")
    assert loaded.calibrator == cal
    plain = DocStore(L2Index(8))
    plain.add([Record("a", "x")], vecs[:1])
    plain.save(tmp_path / "p")
    assert DocStore.load(tmp_path / "p")[0].calibrator is None


def test_doc_store_refuses_a_corrupt_saved_calibrator(tmp_path: Path) -> None:
    from ragcun.io.saves import CHECKSUM, MANIFEST, manifest_checksum

    store = DocStore(L2Index(4), calibrator=RelevanceCalibrator(1.0, -1.0))
    store.add([Record("a", "x")], np.ones((1, 4), np.float32))
    store.save(tmp_path / "s")
    path = tmp_path / "s" / MANIFEST
    man = json.loads(path.read_text())
    man["calibrator"]["slope"] = 1.0
    man[CHECKSUM] = manifest_checksum(man)
    path.write_text(json.dumps(man))
    with pytest.raises(SaveFormatError, match="slope must be negative"):
        DocStore.load(tmp_path / "s")


def test_bundled_gaussian_model_carries_its_calibrator_until_the_head_changes(bundled_encoder) -> None:
    from ragcun import GaussianEncoder

    cal = bundled_encoder.relevance_calibrator
    assert cal is not None and "scifact train" in cal.fitted_on
    assert GaussianEncoder(head="mlp").relevance_calibrator is None  # another head: other distances
    model = GaussianEncoder()
    model.fit_identity(["A first text about tides.", "A second text about plays."])
    assert model.relevance_calibrator is None


def test_rescaled_keeps_every_probability_for_scaled_distances() -> None:
    cal = RelevanceCalibrator(3.0, -0.02, 100, 10, "toy")
    d = np.array([0.0, 5.0, 12.5, 30.0])
    moved = cal.rescaled(1.7)
    np.testing.assert_allclose(moved(1.7 * d), cal(d), rtol=1e-12)
    assert (moved.n_pairs, moved.n_relevant) == (100, 10) and moved.fitted_on == "toy (distances rescaled by 1.7)"
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="distance_scale must be a finite number > 0"):
            cal.rescaled(bad)


def _planted_hybrid(n: int = 20_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hybrid hits whose relevance follows sigmoid(-1 - 0.3 d² + 4 s)."""
    rng = np.random.default_rng(seed)
    d, s = np.sqrt(rng.uniform(0, 16, n)), rng.uniform(0, 1, n)
    return d, s, rng.random(n) < 1 / (1 + np.exp(-(-1.0 - 0.3 * d * d + 4.0 * s)))


def test_hybrid_terms_recover_a_planted_law_and_score_hybrid_hits_only() -> None:
    d, s, y = _planted_hybrid()
    base = RelevanceCalibrator(2.0, -0.5, fitted_on="dense")
    cal = base.fit_hybrid(d, s, y)
    h = cal.hybrid
    assert h is not None and (cal.intercept, cal.slope, cal.fitted_on) == (2.0, -0.5, "dense")
    assert h.intercept == pytest.approx(-1.0, abs=0.15) and h.slope == pytest.approx(-0.3, abs=0.03)
    assert h.bm25 == pytest.approx(4.0, abs=0.3) and h.n_pairs == len(d) and h.n_relevant == int(y.sum())
    dist = np.array([1.0, 1.0, 2.0])
    np.testing.assert_array_equal(cal(dist), base(dist))  # no shares: the distance terms
    p = cal(dist, [0.2, 0.9, 0.9])
    assert p[1] > p[0] and p[1] > p[2]  # more BM25 share, more likely; farther, less
    assert p[1] == pytest.approx(1 / (1 + np.exp(-(h.intercept + h.slope + 0.9 * h.bm25))))
    np.testing.assert_array_equal(base(dist, [0.2, 0.9, 0.9]), base(dist))  # no hybrid terms: distance only
    with pytest.raises(ValueError, match="one BM25 share"):
        cal(dist, [0.5, np.nan, 0.5])
    scaled = cal.rescaled(2.0)
    np.testing.assert_allclose(scaled(2 * dist, [0.2, 0.9, 0.9]), p)


def test_hybrid_terms_refuse_what_they_cannot_fit() -> None:
    d, s, y = _planted_hybrid(400)
    base = RelevanceCalibrator(2.0, -0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        base.fit_hybrid(d, s * 2, y)
    with pytest.raises(ValueError, match="both"):
        base.fit_hybrid(d, s, np.zeros_like(y))
    with pytest.raises(ValueError, match="rise with the BM25"):
        base.fit_hybrid(d, s, s < 0.3)  # the higher the share, the less relevant


def test_hybrid_terms_round_trip_and_version_1_files_still_load(tmp_path: Path) -> None:
    cal = RelevanceCalibrator(2.0, -0.5, 10, 3, "dense").fit_hybrid(*_planted_hybrid(2_000))
    cal.save(tmp_path)
    assert RelevanceCalibrator.load(tmp_path) == cal and json.loads((tmp_path / FILE).read_text())["version"] == 2
    old = {k: v for k, v in cal.to_dict().items() if k != "hybrid"} | {"version": 1}
    (tmp_path / FILE).write_text(json.dumps(old))
    assert RelevanceCalibrator.load(tmp_path) == RelevanceCalibrator(2.0, -0.5, 10, 3, "dense")
    hybrid = cal.to_dict()["hybrid"]
    for broken, match in (({**cal.to_dict(), "hybrid": {**hybrid, "bm25": -1.0}}, "bm25 > 0"),
                          ({**cal.to_dict(), "hybrid": {**hybrid, "slope": "x"}}, "hybrid: field 'slope'"),
                          ({**cal.to_dict(), "hybrid": [1, 2]}, "hybrid: expected exactly"),
                          ({k: v for k, v in cal.to_dict().items() if k != "hybrid"}, "exactly"),
                          ({**old, "hybrid": None}, "exactly")):
        (tmp_path / FILE).write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=match):
            RelevanceCalibrator.load(tmp_path)
