"""One role-aware encoding path: a model's own query/document prompts reach serving, the cache and training alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def prompted_model_dir(tiny_model_dir, tmp_path_factory) -> str:
    """The tiny random model, saved with e5-style query/document prompts, as a Gaussian model."""
    from ragcun import GaussianEncoder

    model = GaussianEncoder(tiny_model_dir, head="linear")
    model.prompts = dict(PROMPTS)
    path = str(tmp_path_factory.mktemp("prompted"))
    model.save(path)
    return path


@pytest.fixture(scope="module")
def encoder(prompted_model_dir):
    from ragcun import GaussianEncoder

    model = GaussianEncoder(prompted_model_dir)
    assert model.prompts["query"] == "query: " and model.prompts["document"] == "passage: "
    return model


def _plain(encoder, text: str) -> np.ndarray:
    """The model's output for exactly ``text`` (no prompt)."""
    return encoder.encode([text], prompt="", convert_to_numpy=True)[0]


def test_encode_texts_applies_the_role_prompt_and_instruction_overrides(encoder) -> None:
    from ragcun.model.encoding import encode_texts

    text = "cells divide"
    query = encode_texts(encoder, [text], "query")[0]
    doc = encode_texts(encoder, [text], "document")[0]
    np.testing.assert_allclose(query, _plain(encoder, "query: " + text), atol=1e-5)
    np.testing.assert_allclose(doc, _plain(encoder, "passage: " + text), atol=1e-5)
    assert not np.allclose(query, doc, atol=1e-4)
    custom = encode_texts(encoder, [text], "query", instruction="Represent this question: ")[0]
    np.testing.assert_allclose(custom, _plain(encoder, "Represent this question: " + text), atol=1e-5)
    with pytest.raises(ValueError, match="role"):
        encode_texts(encoder, [text], "passage")


def test_framework_embeddings_and_retriever_use_the_roles(encoder) -> None:
    from langchain_ragcun import GaussianEmbeddings
    from llama_index.embeddings.ragcun import GaussianEmbedding
    from ragcun import GaussianRetriever

    text = "proteins fold"
    want_q, want_d = _plain(encoder, "query: " + text), _plain(encoder, "passage: " + text)
    lc = GaussianEmbeddings(encoder=encoder)
    np.testing.assert_allclose(lc.embed_query(text), want_q, atol=1e-5)
    np.testing.assert_allclose(lc.embed_documents([text])[0], want_d, atol=1e-5)
    li = GaussianEmbedding(encoder=encoder)
    np.testing.assert_allclose(li.get_query_embedding(text), want_q, atol=1e-5)
    np.testing.assert_allclose(li.get_text_embedding(text), want_d, atol=1e-5)
    li_custom = GaussianEmbedding(encoder=encoder, query_instruction="q: ")
    np.testing.assert_allclose(li_custom.get_query_embedding(text), _plain(encoder, "q: " + text), atol=1e-5)
    retriever = GaussianRetriever(encoder=encoder)
    retriever.add_documents([text, "something else entirely"])
    (doc, distance), = retriever.retrieve(text, top_k=1, mode="dense")
    assert doc == text
    assert distance == pytest.approx(float(np.linalg.norm(want_q - want_d)), rel=1e-4)


def test_the_embedding_cache_keys_and_encodes_by_role(encoder, tmp_path) -> None:
    from ragcun import EmbeddingCache
    from ragcun.model.encoding import encode_texts

    cache = EmbeddingCache(encoder, tmp_path / "cache")
    texts = ["alpha beta", "gamma delta"]
    with torch.no_grad():
        for role in ("query", "document"):
            served = encode_texts(encoder, texts, role)
            cached = encoder.apply_head(torch.as_tensor(cache.get(texts, role))).numpy()
            np.testing.assert_allclose(cached, served, atol=1e-5)
    assert not np.allclose(cache.get(texts, "query"), cache.get(texts, "document"))
