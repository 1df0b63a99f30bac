"""The quickstart examples run offline on the bundled model and print the expected answers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


@pytest.mark.slow  # two fresh interpreters loading torch, LlamaIndex and the model (~25 s each)
@pytest.mark.parametrize("script, expected", [
    ("llamaindex_quickstart.py", ["Photosynthesis", "filtered: Mitochondria", "reloaded: The Eiffel Tower"]),
    ("langchain_quickstart.py", ["Photosynthesis", "filtered: Mitochondria", "reloaded: The Eiffel Tower"]),
])
def test_example_runs(script: str, expected: list[str]) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=EXAMPLES.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    for needle in expected:
        assert needle in out.stdout, out.stdout
    first = out.stdout.splitlines()[0]
    assert "Photosynthesis" in first
