"""ragcun.model.cache: hits, misses, incremental adds, corrupt entries, fingerprints, the default folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer

from ragcun import GaussianEncoder
from ragcun.model.backends.onnx_runtime import OnnxTransformer
from ragcun.model.cache import (
    CorruptCacheError,
    EmbeddingCache,
    EmbeddingStore,
    base_fingerprint,
    default_cache_dir,
    text_keys,
)

TEXTS = [f"text number {i} about {w}" for i, w in enumerate("alpha beta gamma delta epsilon zeta eta theta".split())]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> SentenceTransformer:
    return SentenceTransformer(tiny_model_dir, device="cpu")


@pytest.fixture()
def no_transformer(monkeypatch):
    """Make any call of the transformer fail, in PyTorch or ONNX Runtime (what "served from the cache" means)."""
    def forbid():
        monkeypatch.setattr(Transformer, "forward", lambda *a, **k: pytest.fail("the transformer ran on cached texts"))
        monkeypatch.setattr(OnnxTransformer, "__call__", lambda *a, **k: pytest.fail("ONNX Runtime ran on cached texts"))
    return forbid


def _shards(root: Path) -> list[Path]:
    return sorted(root.rglob("*.safetensors"))


def _offset(data: bytes, tensor: str) -> int:
    """Where ``tensor``'s bytes start in a safetensors file."""
    n = int.from_bytes(data[:8], "little")
    return 8 + n + json.loads(data[8:8 + n])[tensor]["data_offsets"][0]


def test_miss_then_hit_equals_a_direct_encode(tiny, tmp_path, no_transformer):
    expected = tiny.encode(TEXTS, convert_to_numpy=True)  # the tiny model has no Normalize: raw pooled output
    cache = EmbeddingCache(tiny, tmp_path)
    first = cache.get(TEXTS)
    assert (cache.hits, cache.misses) == (0, len(TEXTS))
    assert np.allclose(first, expected, atol=1e-5) and first.dtype == np.float32
    no_transformer()
    again = EmbeddingCache(tiny, tmp_path)
    second = again.get(TEXTS[::-1] + TEXTS[:2])
    assert (again.hits, again.misses) == (len(TEXTS) + 2, 0)
    assert np.array_equal(second, np.concatenate([first[::-1], first[:2]]))
    assert again.get([]).shape == (0, 32)
    assert not list(tmp_path.rglob("*.pkl")) and len(_shards(tmp_path)) == 1


def test_incremental_add_encodes_only_new_texts(tiny, tmp_path, monkeypatch):
    cache = EmbeddingCache(tiny, tmp_path)
    cache.get(TEXTS[:5])
    encoded = []
    real = EmbeddingCache.encode
    monkeypatch.setattr(EmbeddingCache, "encode", lambda self, texts, role=None: encoded.append(list(texts)) or real(self, texts, role))
    fresh = EmbeddingCache(tiny, tmp_path)
    assert fresh.missing(TEXTS) == TEXTS[5:]
    out = fresh.get(TEXTS + [TEXTS[6], TEXTS[1]])
    assert encoded == [TEXTS[5:]]  # once, each new text once, in first-seen order
    assert (fresh.hits, fresh.misses) == (6, 3) and len(_shards(tmp_path)) == 2
    assert np.array_equal(out[len(TEXTS)], out[6]) and np.array_equal(out[-1], out[1])
    assert np.allclose(out, tiny.encode(TEXTS + [TEXTS[6], TEXTS[1]], convert_to_numpy=True), atol=1e-5)
    fresh.get(TEXTS)
    assert len(encoded) == 1


def test_store_roundtrip(tmp_path):
    store = EmbeddingStore(tmp_path / "m")
    assert store.dim is None
    keys = text_keys(["a", "b", "c"])
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.add(keys, emb)
    assert store.dim == 4
    again = EmbeddingStore(tmp_path / "m")
    got, found = again.lookup(np.concatenate([keys[[2, 0]], text_keys(["zzz"])]))
    assert found.tolist() == [True, True, False] and np.array_equal(got[:2], emb[[2, 0]]) and not got[2].any()
    assert again.dim == 4 and np.array_equal(again.lookup(keys)[0], emb)  # the whole shard, opened by name
    with pytest.raises(ValueError, match="NaN"):
        store.add(text_keys(["d"]), np.full((1, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="4-d"):
        store.add(text_keys(["d"]), np.zeros((1, 5), np.float32))


def test_text_keys_depend_on_prompt_and_text():
    a, b = text_keys(["x", "y"]), text_keys(["x", "y"], prompt="query: ")
    assert a.shape == (2, 32) and not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], b[0])
    assert np.array_equal(a, text_keys(["x", "y"])) and not np.array_equal(text_keys(["ab"], "a"), text_keys(["b"], "aa"))


def test_prompts_are_part_of_the_key(tiny_model_dir, tmp_path):
    model = SentenceTransformer(tiny_model_dir, device="cpu", prompts={"query": "query: ", "document": ""})
    cache = EmbeddingCache(model, tmp_path)
    docs = cache.get(TEXTS[:3], "document")
    assert cache.missing(TEXTS[:3]) == []  # no default prompt: what training caches is the document encoding
    assert cache.missing(TEXTS[:3], "query") == TEXTS[:3]
    queries = cache.get(TEXTS[:3], "query")
    assert np.allclose(queries, model.encode_query(TEXTS[:3], convert_to_numpy=True), atol=1e-5)
    assert not np.allclose(queries, docs)
    with pytest.raises(ValueError, match="role"):
        cache.get(TEXTS, "passage")


@pytest.mark.parametrize("damage", ["truncate", "flip-embeddings", "flip-keys", "garbage"])
def test_corrupt_shard_is_set_aside_and_recomputed(tiny, tmp_path, damage, caplog):
    good = EmbeddingCache(tiny, tmp_path).get(TEXTS)
    (shard,) = _shards(tmp_path)
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage.startswith("flip-"):
        data[_offset(data, damage[5:]) + 3] ^= 0xFF
    else:
        data = bytearray(b"not a safetensors file")
    shard.write_bytes(bytes(data))
    cache = EmbeddingCache(tiny, tmp_path)
    with caplog.at_level(logging.WARNING, logger="ragcun.model.cache"):
        out = cache.get(TEXTS)
    assert shard.name in caplog.text and cache.misses == len(TEXTS)
    assert np.allclose(out, good, atol=1e-5)
    assert shard.with_name(shard.name + ".corrupt").is_file() and shard.is_file()  # set aside, then rewritten
    assert EmbeddingCache(tiny, tmp_path).missing(TEXTS) == []


def test_corrupt_shard_raises_naming_the_file_when_asked(tiny, tmp_path):
    EmbeddingCache(tiny, tmp_path).get(TEXTS)
    (shard,) = _shards(tmp_path)
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(CorruptCacheError, match=shard.name) as info:
        EmbeddingCache(tiny, tmp_path, recompute_corrupt=False).get(TEXTS)
    assert info.value.path == shard


def test_different_models_do_not_collide(tiny_model_dir, tmp_path):
    a = SentenceTransformer(tiny_model_dir, device="cpu")
    b = SentenceTransformer(tiny_model_dir, device="cpu")
    with torch.no_grad():
        next(b[0].parameters()).add_(0.5)
    c = SentenceTransformer(tiny_model_dir, device="cpu", prompts={"query": "q: "})
    fingerprints = {base_fingerprint(m) for m in (a, b, c)}
    assert len(fingerprints) == 3
    ea, eb = EmbeddingCache(a, tmp_path).get(TEXTS), EmbeddingCache(b, tmp_path).get(TEXTS)
    assert not np.allclose(ea, eb) and len({p.parent for p in _shards(tmp_path)}) == 2
    assert np.array_equal(EmbeddingCache(a, tmp_path).get(TEXTS), ea)


def test_gaussian_model_shares_its_frozen_base(tiny_model_dir, tmp_path, no_transformer):
    plain = SentenceTransformer(tiny_model_dir, device="cpu")
    gauss = GaussianEncoder(tiny_model_dir, device="cpu")
    mlp = GaussianEncoder(tiny_model_dir, head="mlp", output_dim=8, device="cpu")
    assert base_fingerprint(plain) == base_fingerprint(gauss) == base_fingerprint(mlp)
    expected_unit = gauss.encode_base(TEXTS)
    raw = EmbeddingCache(plain, tmp_path).get(TEXTS)
    no_transformer()
    cache = EmbeddingCache(gauss, tmp_path)
    assert np.allclose(cache.get(TEXTS) / np.linalg.norm(raw, axis=1, keepdims=True), expected_unit, atol=1e-5)
    with torch.no_grad():
        head_out = gauss.apply_head(torch.from_numpy(cache.get(TEXTS))).numpy()
    assert cache.misses == 0 and head_out.shape == (len(TEXTS), 32)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("RAGCUN_CACHE_DIR", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "ragcun" / "embeddings"
    monkeypatch.setenv("RAGCUN_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"


def test_default_root_from_env(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGCUN_CACHE_DIR", str(tmp_path / "env"))
    assert EmbeddingCache(tiny).dir.parent == tmp_path / "env"
    assert EmbeddingCache(tiny, tmp_path / "arg").dir.parent == tmp_path / "arg"  # an argument wins
