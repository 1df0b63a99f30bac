"""``python -m benchmarks.calibration_curve --quick`` runs end to end: the curve, its JSON and its PNG."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT, shared_path


@pytest.mark.slow
def test_calibration_curve_quick_writes_the_curve_and_plot(tmp_path):
    shared_path("data", "beir", "scifact", "qrels", "train.tsv")
    result = subprocess.run([sys.executable, "-m", "benchmarks.calibration_curve", "--quick", "--out", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    curve = json.loads((tmp_path / "calibration_curve.json").read_text())["curve"]
    assert [row["k"] for row in curve] == [5, 25] and all(row["draws"] + row["failed"] == 3 for row in curve)
    assert all(0 <= row["ece_min"] <= row["ece_median"] <= row["ece_max"] < 0.5 for row in curve)
    assert (tmp_path / "calibration_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_calibration_curve_quick_on_nq_fits_on_half_the_questions_and_tests_on_the_other(tmp_path):
    shared_path("data", "train", "qed_nq_xquad_en")
    result = subprocess.run([sys.executable, "-m", "benchmarks.calibration_curve", "--quick", "--corpus", "nq",
                             "--out", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "calibration_curve.json").read_text())
    assert report["corpus"] == "nq" and report["test_pairs"] == 100 * 10 and 0 <= report["bundled_ece"] < 0.5
    assert [row["k"] for row in report["curve"]] == [5, 25] and "hybrid" not in report
    assert "bundled calibrator (fitted on SciFact train): ECE" in result.stdout
