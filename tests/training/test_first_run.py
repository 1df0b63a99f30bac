"""First run: fast ``--help``, clear errors for a mistyped model path, installs that bring Milvus Lite, CI that fails on a missing dependency."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import tomllib
from repo_paths import REPO_ROOT

from ragcun.model.encoder import INITS, resolve_model_path
from ragcun.model.head import HEADS
from ragcun_eval.cli import main as eval_main
from ragcun_train.cli import main as train_main
from ragcun_train.config import HEADS as TRAIN_HEADS
from ragcun_train.config import INITS as TRAIN_INITS

HEAVY = ("torch", "sentence_transformers", "transformers")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this checkout's sources first on the path."""
    path = os.pathsep.join(str(REPO_ROOT / d) for d in ("src", "integrations", "training"))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"} | env)


@pytest.mark.parametrize(("module", "argv"), [
    ("ragcun_train.cli", ["--help"]),
    ("ragcun_eval.cli", ["--help"]),
    ("ragcun_eval.cli", ["retrieval", "--help"]),
    ("ragcun_train.cli", ["--batch-size", "0"]),  # an argument error answers before anything heavy, too
])
def test_help_and_argument_errors_import_neither_torch_nor_sentence_transformers(module, argv):
    proc = _python(
        f"import sys\nfrom {module} import main\ntry:\n    status = main({argv!r})\nexcept SystemExit as exc:\n    status = exc.code\n"
        f"print('STATUS', status, 'LOADED', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"STATUS {0 if '--help' in argv else 2} LOADED []", proc.stdout + proc.stderr


def test_the_cli_copies_of_the_head_and_init_names_match_the_core():
    assert TRAIN_HEADS == HEADS and TRAIN_INITS == INITS


@pytest.mark.parametrize("name", ["./ragcun-modle", "~/no-such-ragcun-model", "/no/such/model", "runs/a/b", "org/"])
def test_a_missing_path_like_model_fails_at_once(name, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # online: still no network attempt
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model_path(name)


def test_a_path_under_an_existing_local_folder_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="model folder 'runs/gauss' does not exist"):
        resolve_model_path("runs/gauss")


def test_a_bare_name_close_to_a_local_model_folder_suggests_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragcun-model").mkdir()
    (tmp_path / "ragcun-model" / "modules.json").write_text("[]")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(FileNotFoundError, match="did you mean the local folder 'ragcun-model'"):
        resolve_model_path("ragcun-modle")


def test_offline_a_hub_id_outside_the_cache_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))
    for name in ("someone/not-a-cached-model", "not-a-cached-model"):
        with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache, and HF_HUB_OFFLINE=1"):
            resolve_model_path(name)


def test_existing_and_bundled_names_resolve(tiny_model_dir):
    assert resolve_model_path(tiny_model_dir) == tiny_model_dir
    assert Path(resolve_model_path("bundled"), "modules.json").is_file()


def test_gaussian_encoder_with_a_mistyped_path_is_a_clear_error():
    from ragcun import GaussianEncoder

    with pytest.raises(FileNotFoundError, match="model folder './ragcun-modle' does not exist"):
        GaussianEncoder("./ragcun-modle")


def test_the_clis_print_one_error_line_for_a_mistyped_model(tmp_path, capsys):
    beir = REPO_ROOT / "training" / "ragcun_train" / "demo"
    assert train_main([str(beir), "--model", "./ragcun-modle", "--output", str(tmp_path / "out")]) == 2
    assert eval_main(["retrieval", str(beir), "--model", "./ragcun-modle"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["ragcun-train: error: model folder './ragcun-modle' does not exist",
                     "ragcun-eval: error: model folder './ragcun-modle' does not exist"]
    assert not (tmp_path / "out").exists()


def test_the_milvus_extras_name_milvus_lite_themselves():
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = [req.split(";")[0].split(">")[0].split("[")[0].strip() for req in extras["milvus"]]
    assert "milvus-lite" in names and "pymilvus" in names, extras["milvus"]
    assert any(req.startswith("ragcun[") and "milvus" in req.split("[")[1] for req in extras["dev"]), extras["dev"]


def test_ci_installs_as_the_readme_does_and_sets_ci():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "--upgrade pip" not in script and "pip install torch==2.13.0" in readme and 'pip install -e ".[dev]"' in readme
    assert "pip install -q torch==2.13.0" in script and 'pip install -q -e ".[dev]"' in script and 'CI="${CI:-true}"' in script


def test_ci_lints_and_type_checks_between_the_install_and_the_tests():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert {"ruff", "mypy"} <= {req.split(";")[0].split(">")[0].strip() for req in dev}, dev
    steps = ('pip install -q -e ".[dev]"', "\nruff check src integrations training benchmarks\n", "\nmypy\n", "python -m pytest")
    positions = [script.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))


MODULE_SKIP = "import pytest\npytest.importorskip('no_such_module_for_ragcun', reason='needs: pip install \"ragcun[milvus]\"')\n" \
              "def test_x():\n    pass\n"
TEST_SKIP = "import pytest\ndef test_x():\n    pytest.importorskip('no_such_module_for_ragcun')\n"
DATA_SKIP = "import pytest\ndef test_x():\n    pytest.skip('../shared is absent')\n"


@pytest.mark.parametrize(("probe", "ci", "fails"), [
    (MODULE_SKIP, "", False), (MODULE_SKIP, "true", True), (TEST_SKIP, "", False), (TEST_SKIP, "true", True),
    (DATA_SKIP, "true", False),
])
def test_a_skip_for_a_missing_dependency_fails_under_ci(tmp_path, probe, ci, fails):
    (tmp_path / "test_probe.py").write_text(probe)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=os.environ | {"CI": ci, "PYTHONPATH": str(REPO_ROOT / "tests")})
    assert (proc.returncode not in (0, pytest.ExitCode.NO_TESTS_COLLECTED)) == fails, proc.stdout + proc.stderr
    assert ("fails under CI" in proc.stdout) == fails


def test_the_readme_llamaindex_snippet_runs_as_printed(capsys):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Use it from LlamaIndex or LangChain", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "from llama_index.core import Document, StorageContext, VectorStoreIndex" in snippet
    exec(compile(snippet, "README.md (LlamaIndex snippet)", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Cats are small felines."


def test_the_command_prints_only_its_error_line(tmp_path):
    proc = _python("import sys\nfrom ragcun_train.cli import main\n"
                   f"sys.exit(main(['--model', './ragcun-modle', '--output', {str(tmp_path / 'out')!r}]))")
    assert proc.returncode == 2 and proc.stderr.splitlines() == ["ragcun-train: error: model folder './ragcun-modle' does not exist"]
