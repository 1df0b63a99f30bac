"""``python -m benchmarks.search --quick`` runs end to end and prints both architecture ratios."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT, shared_path


@pytest.mark.slow
def test_search_benchmark_quick_prints_both_ratios():
    shared_path("data", "beir", "scifact", "queries.jsonl")  # the hybrid half reads SciFact and NQ texts
    shared_path("data", "train", "qed_nq_xquad_en", "pairs.jsonl")
    result = subprocess.run([sys.executable, "-m", "benchmarks.search", "--quick"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    dense = re.search(r"^framework/FAISS ratio: LlamaIndex ([\d.]+), LangChain ([\d.]+) \(target <= 1\.05",
                      result.stdout, re.M)
    hybrid = re.search(r"^hybrid/dense ratio: ([\d.]+) \(target <= 1\.20", result.stdout, re.M)
    assert dense and hybrid, result.stdout[-3000:]
    assert all(float(r) > 0 for r in (*dense.groups(), *hybrid.groups()))
    # every ragcun store runs exact FAISS, as raw FAISS does: the same neighbours
    for store in ("ragcun L2Index", "ragcun LlamaIndex store", "ragcun LangChain store"):
        assert re.search(rf"^\| {store} \|.*\| 1\.0000 \|$", result.stdout, re.M), f"{store}: recall@10 is not 1"
