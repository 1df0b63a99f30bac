"""What a run measures and resolves: full fine-tuning measures its own encodings by role (a prompted model's eval
queries carry its query prompt), and resolving fills the run's choices into a new config."""

from __future__ import annotations

import numpy as np
import pytest

from ragcun import GaussianEncoder
from ragcun_eval.beir import BeirDataset
from ragcun_train.api import _resolve_config
from ragcun_train.config import DEMO_DIR, TrainConfig
from ragcun_train.evaluation import retrieval_metrics
from ragcun_train.full import encoded_for_measure, measure_encoded
from ragcun_train.state import Run

PROMPTS = {"query": "query: ", "document": "passage: "}
DOCS = ["insulin receptor signalling in the liver", "dopamine neurons fire in bursts", "the kidney filters plasma",
        "antibodies bind a viral protein", "tumour cells mutate quickly", "the heart pumps blood"]
QUERIES = {"q0": "insulin signalling", "q1": "dopamine bursts", "q2": "kidney filtration"}


def _encode(model: GaussianEncoder, texts: list[str], prompt: str) -> np.ndarray:
    return model.encode(texts, prompt=prompt, batch_size=64, convert_to_numpy=True)


def test_measure_encoded_encodes_eval_queries_with_the_query_prompt(tiny_model_dir):
    model = GaussianEncoder(tiny_model_dir, head="linear")
    model.prompts = dict(PROMPTS)
    ev = BeirDataset("toy", [f"d{i}" for i in range(len(DOCS))], DOCS, dict(QUERIES),
                     {q: {f"d{i}": 1} for i, q in enumerate(QUERIES)})
    iso, queries, docs = encoded_for_measure(model, DOCS, ev)
    want_queries, want_docs = _encode(model, list(QUERIES.values()), "query: "), _encode(model, DOCS, "passage: ")
    np.testing.assert_allclose(queries, want_queries, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(docs, want_docs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(iso, want_docs, rtol=1e-5, atol=1e-5)
    plain = _encode(model, list(QUERIES.values()), "")
    assert np.abs(queries - plain).max() > 1e-3  # the prompt changes the vectors: without it they would differ
    measured = measure_encoded(model, DOCS, ev)
    assert measured["metrics"] == pytest.approx(retrieval_metrics(want_queries, want_docs, ev))
    assert np.array_equal(measured["_emb"], iso)


def test_resolving_fills_the_run_choices_into_a_new_config(tmp_path):
    options = {"output": str(tmp_path / "out"), "device": "cpu"}
    cfg = _resolve_config(None, options)
    assert (cfg.objective, cfg.device, cfg.freeze_base) == ("gaussian-rag", "cpu", True)
    assert (cfg.eval_data, cfg.eval_split) == (str(DEMO_DIR), "test")  # the demo reports on its test queries
    assert options == {"output": str(tmp_path / "out"), "device": "cpu"} and TrainConfig(**options).objective is None
    assert Run.__dataclass_params__.frozen  # type: ignore[attr-defined]  # a resolved run is never changed afterwards
