"""Shared fixtures and hooks for every test folder: offline mode, a tiny random sentence-transformers
model, the bundled model. Paths to the repository and the shared data folder are in ``repo_paths``.

Under CI (the ``CI`` environment variable set, as ``.ci/run`` does) a test skipped for a missing
dependency fails instead: the README's install brings every dependency (Milvus Lite included),
so such a skip means the install is broken, and a green run must not hide it.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

MISSING_DEPENDENCY = re.compile(r"pip install|could not import|No module named|is not installed")


def _fail_missing_dependency_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Under CI, turn ``report``'s skip into a failure when its reason is a missing dependency."""
    if os.environ.get("CI", "").lower() in ("", "0", "false") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if MISSING_DEPENDENCY.search(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing dependency, which fails under CI (the README's install brings it): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A test module skipped at import (``pytest.importorskip``) for a missing dependency fails under CI."""
    outcome = yield
    _fail_missing_dependency_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test skipped for a missing dependency fails under CI."""
    outcome = yield
    _fail_missing_dependency_in_ci(outcome.get_result())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A 1-layer, 32-d random BERT with the bundled tokenizer, saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ragcun import bundled_model_path

    torch.manual_seed(0)
    hf_dir = tmp_path_factory.mktemp("tiny_hf")
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    st_dir = tmp_path_factory.mktemp("tiny_st")
    SentenceTransformer(modules=[Transformer(str(hf_dir), max_seq_length=64), Pooling(32)]).save(str(st_dir))
    return str(st_dir)


@pytest.fixture(scope="session")
def bundled_encoder():
    """The real bundled all-MiniLM-L6-v2 with an identity-initialised Gaussian head (loaded once)."""
    from ragcun import GaussianEncoder

    return GaussianEncoder()
