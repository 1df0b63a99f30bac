"""The examples run offline on the bundled model and print the expected answers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def _run(script: str) -> str:
    """``script``'s standard output; it must exit cleanly."""
    out = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=EXAMPLES.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow  # two fresh interpreters loading torch, LlamaIndex and the model (~25 s each)
@pytest.mark.parametrize("script, expected", [
    ("llamaindex_quickstart.py", ["Photosynthesis", "filtered: Mitochondria", "reloaded: The Eiffel Tower"]),
    ("langchain_quickstart.py", ["Photosynthesis", "filtered: Mitochondria", "reloaded: The Eiffel Tower"]),
])
def test_example_runs(script: str, expected: list[str]) -> None:
    stdout = _run(script)
    for needle in expected:
        assert needle in stdout, stdout
    first = stdout.splitlines()[0]
    assert "Photosynthesis" in first


@pytest.mark.slow  # a fresh interpreter each, loading the model and building a tiny cross-encoder (~25 s each)
@pytest.mark.parametrize("script", ["llamaindex_rerank.py", "langchain_rerank.py"])
def test_rerank_example_runs(script: str) -> None:
    lines = _run(script).splitlines()
    retrieved = [line for line in lines if line.startswith("retrieved: ragcun=")]
    reranked = [line for line in lines if line.startswith("reranked: cross-encoder=")]
    assert len(retrieved) == 4 and "Photosynthesis" in retrieved[0], lines
    assert len(reranked) == 2, lines  # top_n
    assert {line.rsplit("  ", 1)[1] for line in reranked} <= {line.rsplit("  ", 1)[1] for line in retrieved}, lines
