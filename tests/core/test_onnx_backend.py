"""ragcun.model.backends: the ONNX Runtime backend encodes as PyTorch does, keeps its exports sound, and says
clearly when it is not installed or cannot run a model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import StaticEmbedding
from transformers import AutoTokenizer

from ragcun import GaussianEncoder, bundled_model_path
from ragcun.model.backends import EXTRA_HINT, BackendUnavailableError, onnx_export, resolve_backend
from ragcun.model.backends.model import BackendSentenceTransformer, export_dir
from ragcun.model.backends.onnx_export import BackendExportError
from ragcun.model.cache import EmbeddingCache

TEXTS = ["What causes the seasons on Earth?", "ragcun", "Gaussian embeddings ranked by L2 distance. " * 20,
         "Ein kurzer deutscher Satz.", "a b c d e f g h i j k l m n o p"]


@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx_exports")


@pytest.fixture(scope="module")
def bundled_pair(export_root):
    pytest.importorskip("onnxruntime")
    torch_enc = GaussianEncoder(backend="torch", device="cpu")
    onnx_enc = GaussianEncoder(backend="onnx", device="cpu")
    onnx_enc.set_backend("onnx", export_root)
    return torch_enc, onnx_enc


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_vectors_match_torch_on_the_bundled_model(bundled_pair):
    torch_enc, onnx_enc = bundled_pair
    assert onnx_enc.inference_backend == "onnx" and onnx_enc.get_backend() == "torch"  # ST's loading backend
    for kwargs in ({}, {"batch_size": 2}, {"normalize_embeddings": True}, {"prompt": "query: "}):
        a, b = torch_enc.encode(TEXTS, **kwargs), onnx_enc.encode(TEXTS, **kwargs)
        assert a.shape == b.shape == (len(TEXTS), 384)
        assert _cosines(a, b).min() >= 0.9999
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    tensor = onnx_enc.encode_query(TEXTS[:2], convert_to_tensor=True)
    assert torch.is_tensor(tensor) and tensor.shape == (2, 384)
    assert np.allclose(onnx_enc.encode_base(TEXTS), torch_enc.encode_base(TEXTS), atol=1e-5)


def test_int8_stays_close_to_torch_on_the_bundled_model(bundled_pair, export_root):
    """Quantised, so not lossless, but per-channel weight scales keep it close (one scale per tensor, as
    ``quantize_dynamic`` does by default, falls to about 0.87 on one of these texts)."""
    torch_enc, _ = bundled_pair
    int8 = GaussianEncoder(backend="onnx-int8", device="cpu")
    int8.set_backend("onnx-int8", export_root)
    cosines = _cosines(torch_enc.encode(TEXTS), int8.encode(TEXTS))
    assert cosines.min() >= 0.98
    assert cosines.min() < 0.9999  # it is the quantised graph that ran


def test_training_forward_stays_in_torch(bundled_pair):
    _, onnx_enc = bundled_pair
    features = onnx_enc.preprocess(TEXTS[:2])
    out = onnx_enc(features)["sentence_embedding"]
    assert out.requires_grad  # gradients flow: the PyTorch path ran


@pytest.fixture()
def tiny_onnx(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    return BackendSentenceTransformer(tiny_model_dir, device="cpu", backend="onnx", export_root=tmp_path)


def test_changed_weights_get_a_new_export(tiny_onnx, tiny_model_dir):
    before = tiny_onnx.encode(TEXTS)
    with torch.no_grad():
        for p in tiny_onnx[0].parameters():
            p.mul_(0.5)
    reference = BackendSentenceTransformer(modules=list(tiny_onnx), device="cpu", backend="torch").encode(TEXTS)
    after = tiny_onnx.encode(TEXTS)
    assert not np.allclose(before, after, atol=1e-3)
    assert np.allclose(after, reference, atol=1e-4)


def test_weights_an_optimiser_changes_in_place_get_a_new_export(tiny_onnx):
    """A fused optimiser writes the weights without bumping their version counters: encodes after its step
    must not reuse the export of the weights before it."""
    before = tiny_onnx.encode(TEXTS)
    optimiser = torch.optim.AdamW(tiny_onnx[0].parameters(), lr=0.05, fused=True)
    versions = [p._version for p in tiny_onnx[0].parameters()]
    tiny_onnx(tiny_onnx.preprocess(TEXTS))["sentence_embedding"].pow(2).sum().backward()
    optimiser.step()
    assert [p._version for p in tiny_onnx[0].parameters()] == versions  # what makes this case hard
    reference = BackendSentenceTransformer(modules=list(tiny_onnx), device="cpu", backend="torch").encode(TEXTS)
    after = tiny_onnx.encode(TEXTS)
    assert not np.allclose(before, after, atol=1e-3)
    assert np.allclose(after, reference, atol=1e-4)


def test_a_query_encode_does_not_reread_unchanged_weights(tiny_onnx, monkeypatch):
    """Summing every weight takes longer than encoding a query on a real model: with no optimiser step and
    no in-place write in between, encodes reuse the weights' key."""
    from ragcun.model.backends import model as backend_model

    tiny_onnx.encode(TEXTS)
    sums = []
    real = backend_model.weight_sums
    monkeypatch.setattr(backend_model, "weight_sums", lambda module: sums.append(module) or real(module))
    tiny_onnx.encode(TEXTS[:1])
    assert not sums
    with torch.no_grad():
        next(tiny_onnx[0].parameters()).add_(0.0)  # bumps a version counter
    key = backend_model.weights_key(tiny_onnx[0])
    assert sums and key == backend_model.weights_key(tiny_onnx[0])


def test_a_damaged_export_is_set_aside_and_rebuilt(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    first = BackendSentenceTransformer(tiny_model_dir, device="cpu", backend="onnx", export_root=tmp_path)
    expected = first.encode(TEXTS)
    path = export_dir(first, tmp_path) / "onnx.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    second = BackendSentenceTransformer(tiny_model_dir, device="cpu", backend="onnx", export_root=tmp_path)
    with pytest.warns(RuntimeWarning, match="damaged.*checksum"):
        again = second.encode(TEXTS)
    assert np.allclose(again, expected, atol=1e-5)
    assert path.with_name("onnx.onnx.corrupt").is_file() and path.is_file()


def test_the_cache_is_shared_by_lossless_backends_only(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    model = SentenceTransformer(tiny_model_dir, device="cpu")
    prints = {b: EmbeddingCache(model, tmp_path, backend=b).fingerprint for b in ("torch", "onnx", "onnx-int8")}
    assert prints["torch"] == prints["onnx"] != prints["onnx-int8"]
    monkeypatch.setattr(onnx_export, "EXPORT_VERSION", onnx_export.EXPORT_VERSION + 1)  # a new quantisation
    assert EmbeddingCache(model, tmp_path, backend="onnx-int8").fingerprint != prints["onnx-int8"]
    assert EmbeddingCache(model, tmp_path, backend="onnx").fingerprint == prints["onnx"]
    written = EmbeddingCache(model, tmp_path, backend="onnx").get(TEXTS)
    read = EmbeddingCache(model, tmp_path, backend="torch")
    assert np.allclose(read.get(TEXTS), written) and read.misses == 0
    assert np.allclose(read.encode(TEXTS), written, atol=1e-4)  # what makes sharing sound


def test_missing_onnxruntime_is_one_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(BackendUnavailableError, match=EXTRA_HINT.replace("[", r"\[").replace("]", r"\]")):
        GaussianEncoder(tiny_model_dir, backend="onnx", device="cpu")
    assert resolve_backend(None, "cpu") == "torch"
    model = GaussianEncoder(tiny_model_dir, device="cpu")
    assert model.inference_backend == "torch" and model.encode(TEXTS).shape == (len(TEXTS), 32)


def test_backend_names_and_devices_are_checked():
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        resolve_backend("tensorrt", "cpu")
    assert resolve_backend(None, "cuda") == "torch"
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_backend("onnx", "cuda:0")


def _static_model(**kwargs) -> BackendSentenceTransformer:
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    return BackendSentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=16)], device="cpu", **kwargs)


def test_a_model_the_backend_cannot_export_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(BackendExportError, match="backend='onnx' cannot run model .*StaticEmbedding"):
        _static_model(backend="onnx", export_root=tmp_path).encode(TEXTS)
    assert _static_model(backend="torch").encode(TEXTS).shape == (len(TEXTS), 16)
    default = _static_model(export_root=tmp_path)
    with pytest.warns(RuntimeWarning, match="encoding with PyTorch instead"):
        assert default.encode(TEXTS).shape == (len(TEXTS), 16)
    assert default.inference_backend == "torch"
