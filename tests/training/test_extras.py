"""The install's extras: ``pip install ragcun`` is the library alone; each framework and the training CLIs are extras.

Checked from the source and ``pyproject.toml`` (every third-party import is declared where it belongs), and
by importing in fresh interpreters: ``import ragcun`` loads no framework, and an adapter whose framework is
missing says which extra to install.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from repo_paths import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
FRAMEWORKS = ("llama_index.core", "langchain_core")
OWN_PACKAGES = ("ragcun", "ragcun_train", "ragcun_eval", "langchain_ragcun",
                "llama_index.embeddings.ragcun", "llama_index.vector_stores.ragcun")


def _dist(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``"faiss-cpu>=1.8"`` -> ``faiss-cpu``)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, f"unreadable requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _declared(*extras: str) -> set[str]:
    """Distributions of the core dependencies plus those of ``extras``."""
    groups = [PYPROJECT["dependencies"]] + [PYPROJECT["optional-dependencies"][e] for e in extras]
    return {_dist(r) for group in groups for r in group}


def _imported_distributions(root: Path) -> dict[str, set[str]]:
    """Distribution -> modules importing it, for every absolute third-party import under ``root``."""
    by_module = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__" or name.startswith(OWN_PACKAGES):
                    continue
                if name.startswith("llama_index."):  # a namespace package: llama_index.core is llama-index-core
                    dists = ["llama-index-core"] if name.startswith("llama_index.core") else []
                else:
                    dists = [d for d in by_module.get(top, []) if _dist(d) != "ragcun"]
                assert dists, f"{path}: no installed distribution provides {name!r}"
                for d in dists:
                    found.setdefault(_dist(d), set()).add(str(path.relative_to(REPO_ROOT)))
    return found


@pytest.mark.parametrize(("folder", "extras"), [
    ("src/ragcun", ()),
    ("src/ragcun/index/milvus", ("milvus",)),
    ("src/ragcun/model/backends", ("onnx",)),
    ("integrations/langchain_ragcun", ("langchain",)),
    ("integrations/llama_index", ("llamaindex",)),
    ("training", ("train",)),
])
def test_every_import_is_declared_in_its_extra(folder, extras):
    root = REPO_ROOT / folder
    imported = _imported_distributions(root)
    if folder == "src/ragcun":  # the Milvus index and the ONNX backend are their extras' own code
        for own in (root / "index" / "milvus", root / "model" / "backends"):
            theirs = _imported_distributions(own)
            imported = {d: mods for d, mods in imported.items() if mods - theirs.get(d, set())}
    undeclared = {d: sorted(mods) for d, mods in imported.items() if d not in _declared(*extras)}
    assert not undeclared, f"imported under {folder} but not declared in the core or {extras}: {undeclared}"


def test_core_dependencies_leave_out_the_frameworks_and_the_trainer():
    core = _declared()
    assert not core & {"llama-index-core", "langchain-core", "pymilvus", "milvus-lite", "datasets", "accelerate",
                       "matplotlib"}
    assert "llama-index-core" in _declared("llamaindex") - core
    assert "langchain-core" in _declared("langchain") - core


def test_dev_extra_is_every_extra_plus_the_test_tools():
    extras = PYPROJECT["optional-dependencies"]
    (itself,) = [r for r in extras["dev"] if _dist(r) == "ragcun"]
    named = set(re.fullmatch(r"ragcun\[([a-z,]+)\]", itself).group(1).split(","))
    assert named == set(extras) - {"dev"}
    assert {"pytest", "hypothesis", "langchain-tests", "ruff", "mypy"} <= {_dist(r) for r in extras["dev"]}
    # pip 23.2 (Python 3.11's venv) compares extra names literally: keep them plain lowercase words
    assert all(re.fullmatch(r"[a-z]+", name) for name in extras)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_ragcun_loads_no_framework():
    result = _run(
        "import sys, ragcun\n"
        "[getattr(ragcun, name) for name in ragcun.__all__]\n"
        f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"import ragcun loaded {result.stdout.strip()}"


@pytest.mark.parametrize(("package", "framework", "dist", "extra"), [
    ("langchain_ragcun", "langchain_core", "langchain-core", "langchain"),
    ("llama_index.embeddings.ragcun", "llama_index.core", "llama-index-core", "llamaindex"),
    ("llama_index.vector_stores.ragcun", "llama_index.core", "llama-index-core", "llamaindex"),
])
def test_adapter_without_its_framework_names_the_extra(package, framework, dist, extra):
    result = _run(f"import sys\nsys.modules[{framework!r}] = None  # as if not installed\nimport {package}\n")
    assert result.returncode != 0
    assert result.stderr.count("Traceback") == 1, f"not one error:\n{result.stderr}"
    assert result.stderr.strip().splitlines()[-1] == f'ImportError: {package} requires {dist}: pip install "ragcun[{extra}]"'
