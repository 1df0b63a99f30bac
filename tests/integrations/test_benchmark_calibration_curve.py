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
