"""ragcun-eval end to end on a tiny model and a tiny SciFact slice: specs, the cache, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from repo_paths import scifact_slice
from sentence_transformers.sentence_transformer.modules import Transformer

from ragcun.model.cache import EmbeddingCache
from ragcun_eval.beir import load_beir
from ragcun_eval.cli import main
from ragcun_eval.geometry import apply_geometry
from ragcun_eval.metrics import METRICS
from ragcun_eval.models import Embedder, parse_model_spec
from ragcun_eval.retrieval import run_model


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory) -> Path:
    """8 SciFact test queries and a 30-doc corpus, written as a BEIR folder."""
    return scifact_slice(tmp_path_factory.mktemp("beir") / "scifact-tiny", max_queries=8, max_docs=30)


@pytest.fixture(scope="module")
def gaussian_dir(tiny_model_dir, tmp_path_factory) -> str:
    """A saved Gaussian model on the tiny base."""
    from ragcun import GaussianEncoder

    path = tmp_path_factory.mktemp("gauss:model")  # a ':' in the path must not confuse the parser
    GaussianEncoder(tiny_model_dir).save(str(path))
    return str(path)


def test_parse_model_spec(tiny_model_dir: str, gaussian_dir: str) -> None:
    bundled = parse_model_spec("bundled")
    assert bundled.geometry == "cosine" and not bundled.gaussian and Path(bundled.path).is_dir()
    assert parse_model_spec("bundled:whitened").geometry == "whitened"
    assert parse_model_spec(f"{tiny_model_dir}:l2").path == tiny_model_dir
    gauss = parse_model_spec(gaussian_dir)
    assert gauss.gaussian and gauss.geometry == "l2" and gauss.path == gaussian_dir
    assert parse_model_spec(f"{gaussian_dir}:cosine").geometry == "cosine"
    with pytest.raises(ValueError, match="unknown geometry 'dot'"):
        parse_model_spec("bundled:dot")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_model_spec("/no/such/model")


def test_geometries() -> None:
    rng = np.random.default_rng(0)
    docs, queries = rng.standard_normal((300, 8)) * 3 + 1, rng.standard_normal((5, 8))
    cos = apply_geometry("cosine", docs, queries)
    assert np.allclose(np.linalg.norm(cos.docs, axis=1), 1, atol=1e-5)
    assert np.allclose(cos.query_norms, np.linalg.norm(queries, axis=1))
    white = apply_geometry("whitened", docs, queries).docs.astype(np.float64)
    assert np.allclose(white.mean(0), 0, atol=1e-4) and np.allclose(np.cov(white, rowvar=False), np.eye(8), atol=1e-3)
    assert np.allclose(apply_geometry("l2", docs, queries).docs, docs.astype(np.float32))


def _forbid_transformer(monkeypatch, why: str) -> None:
    monkeypatch.setattr(Transformer, "forward", lambda *a, **k: pytest.fail(why))


def test_second_run_encodes_nothing(tiny_beir: Path, tiny_model_dir: str, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = EmbeddingCache.encode
    monkeypatch.setattr(EmbeddingCache, "encode", lambda self, texts, role=None: calls.append(role) or real(self, texts, role))
    data = load_beir(tiny_beir)
    first = [run_model(data, parse_model_spec(f"{tiny_model_dir}:{g}"), Embedder(tmp_path)).row()
             for g in ("cosine", "l2", "whitened")]
    assert sorted(calls) == ["document", "query"]  # one encode per role, shared by the geometries
    _forbid_transformer(monkeypatch, "the transformer ran although every text was cached")
    second = run_model(data, parse_model_spec(f"{tiny_model_dir}:cosine"), Embedder(tmp_path)).row()
    assert len(calls) == 2 and second == first[0]
    assert not list(tmp_path.rglob("*.pkl")) and len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_gaussian_model_reuses_its_base_cache(tiny_beir: Path, tiny_model_dir: str, gaussian_dir: str, tmp_path: Path,
                                              monkeypatch) -> None:
    from ragcun import GaussianEncoder

    texts = load_beir(tiny_beir).doc_texts[:5]
    Embedder(tmp_path).embed(parse_model_spec(tiny_model_dir), texts, "document")
    expected = GaussianEncoder(gaussian_dir).encode_document(texts, convert_to_numpy=True)
    _forbid_transformer(monkeypatch, "re-encoded a cached base")
    out = Embedder(tmp_path).embed(parse_model_spec(gaussian_dir), texts, "document")
    assert np.allclose(out, expected, atol=1e-4)


def test_training_and_eval_share_one_cache(tiny_beir: Path, gaussian_dir: str, tmp_path: Path, monkeypatch) -> None:
    """What training cached (no role) serves the evaluation of a model without prompts, and back."""
    from ragcun import GaussianEncoder

    data = load_beir(tiny_beir)
    model = GaussianEncoder(gaussian_dir)
    cache = EmbeddingCache(model, tmp_path)
    cache.get([*data.doc_texts, *data.queries.values()])
    _forbid_transformer(monkeypatch, "evaluation re-encoded what training cached")
    run_model(data, parse_model_spec(gaussian_dir), Embedder(tmp_path))
    assert cache.missing(data.doc_texts, "document") == []


def test_retrieval_and_claims_cli(tiny_beir: Path, tiny_model_dir: str, gaussian_dir: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["claims", str(tiny_beir.parent), "--model", tiny_model_dir, "--model", f"{tiny_model_dir}:whitened",
               "--model", gaussian_dir, "--output", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["geometry"] for r in rows] == ["cosine", "whitened", "l2"]
    assert all(set(r) == {"dataset", "model", "geometry", *METRICS} and 0 <= r["ndcg@10"] <= 1 for r in rows)
    for name in ("results.csv", "results.md", "retrieval.png", "claims.json", "claims.csv", "reliability_scifact-tiny.png"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| dataset | model | geometry | ndcg@10 |" in printed
    assert printed.count("separation ") == 3 and "-> reference" in printed
    assert all(("-> held" in line or "-> did not hold" in line) for line in printed.splitlines() if line.startswith("norm "))


def test_cli_errors(tmp_path: Path, capsys) -> None:
    assert main(["retrieval", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["retrieval", str(tmp_path), "--model", "bundled:dot"]) == 2
    assert "unknown geometry" in capsys.readouterr().err


def test_isotropy_cli(tiny_beir: Path, tiny_model_dir: str, gaussian_dir: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "iso"
    rc = main(["isotropy", "--model", tiny_model_dir, "--model", gaussian_dir, "--texts", str(tiny_beir),
               "--output", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    for name in ("isotropy.csv", "isotropy_comparison.csv", "isotropy_comparison.png", "norms.png", "per_dim.png",
                 "covariance.png", "spectrum.png", "pca.png", "cosine_similarity.png"):
        assert (out / name).stat().st_size > 0, name
    header = (out / "isotropy.csv").read_text().splitlines()[0].split(",")
    assert header == ["metric", f"{Path(tiny_model_dir).name}:cosine", f"{Path(gaussian_dir).name}:l2"]
    comparison = (out / "isotropy_comparison.csv").read_text().splitlines()
    assert comparison[1].split(",")[1] == "original" and comparison[2].split(",")[1] == "trained"
    assert "rank_ratio" in capsys.readouterr().out


def test_help_shows_no_internal_section_marks(capsys) -> None:
    for argv in (["--help"], ["retrieval", "--help"], ["claims", "--help"], ["isotropy", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "§" not in out and "the seed" not in out


def test_non_positive_sizes_are_argument_errors(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["retrieval", "x", "--batch-size", "0"])
    assert info.value.code == 2 and "--batch-size: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_gaussian_names_the_bundled_gaussian_model(bundled_encoder, tiny_beir: Path, tmp_path: Path) -> None:
    """``--model gaussian`` is what ``GaussianEncoder()`` serves (L2), apart from ``bundled`` (the base, cosine)."""
    spec = parse_model_spec("gaussian")
    assert spec.gaussian and spec.geometry == "l2" and spec.path == parse_model_spec("bundled").path
    assert parse_model_spec("gaussian:hybrid").dense_geometry == "l2"
    texts = ["Tides are caused by the Moon.", "Hamlet is a play."]
    served = bundled_encoder.encode_document(texts, convert_to_numpy=True)
    np.testing.assert_allclose(Embedder(tmp_path / "cache").embed(spec, texts, "document"), served, atol=1e-4)
    data = load_beir(tiny_beir)
    embedder = Embedder(tmp_path / "cache")
    gauss, base = run_model(data, spec, embedder), run_model(data, parse_model_spec("bundled"), embedder)
    assert gauss.ranked == base.ranked  # the identity head ranks by L2 exactly as the base does by cosine
    # one Embedder serves both names apart: the base's raw (pooled) outputs, the Gaussian model's head outputs
    assert not np.allclose(embedder.embed(parse_model_spec("bundled"), texts, "document"), served, atol=1e-3)
    assert embedder.model(spec).model.relevance_calibrator == bundled_encoder.relevance_calibrator is not None


def test_calibrate_cli_writes_a_calibrator_the_model_loads(bundled_encoder, tiny_beir: Path, tmp_path: Path,
                                                           capsys) -> None:
    """``ragcun-eval calibrate --output MODEL`` fits P(relevant) on a split; ``GaussianEncoder(MODEL)`` carries it."""
    from ragcun import GaussianEncoder

    model = tmp_path / "model"
    bundled_encoder.save(str(model))
    assert GaussianEncoder(str(model)).relevance_calibrator == bundled_encoder.relevance_calibrator  # saved with it
    (model / "relevance_calibrator.json").unlink()
    assert GaussianEncoder(str(model)).relevance_calibrator is None
    cache = ["--cache-dir", str(tmp_path / "cache")]
    rc = main(["calibrate", str(tiny_beir), "--split", "test", "--model", str(model), "--output", str(model), *cache])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "P(relevant) = sigmoid(" in printed.out and "wrote" in printed.out
    loaded = GaussianEncoder(str(model)).relevance_calibrator
    assert loaded is not None and loaded.n_pairs == 80 and "scifact-tiny test" in loaded.fitted_on
    rc = main(["claims", str(tiny_beir), "--model", str(model), *cache])
    assert rc == 0 and "calibrator, ECE" in capsys.readouterr().out
    assert main(["calibrate", str(tiny_beir), "--split", "test", "--model", f"{model}:cosine", *cache]) == 2
    assert "own L2 space" in capsys.readouterr().err
