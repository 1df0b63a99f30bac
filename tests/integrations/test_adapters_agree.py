"""Both framework stores are thin adapters over ``DocStore``: same parameters, same modes, same encoder."""

from __future__ import annotations

import asyncio
import inspect
import threading
import warnings

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from langchain_ragcun import GaussianEmbeddings
from langchain_ragcun import GaussianVectorStore as LCStore
from llama_index.embeddings.ragcun import GaussianEmbedding
from llama_index.vector_stores.ragcun import GaussianVectorStore as LIStore
from ragcun.model.encoder import BUNDLED_MODEL_NAME
from ragcun.model.encoding import load_encoder
from ragcun.store.fusion import DEFAULT_CANDIDATES, DEFAULT_RRF_K
from ragcun.store.modes import RetrievalMode

SHARED = ("retrieval_mode", "alpha", "candidates", "calibrator", "score_mode", "lexical", "store", "index", "fusion",
          "normalization", "rrf_k")


def test_both_stores_take_the_same_parameters_with_the_same_defaults() -> None:
    lc = inspect.signature(LCStore.__init__).parameters
    li = {**inspect.signature(LIStore.__init__).parameters}
    fields = LIStore.model_fields
    for name in SHARED:
        assert name in lc, name
        assert name in li or name in fields, name
    assert lc["calibrator"].annotation == li["calibrator"].annotation == "CalibratorSource"
    assert lc["retrieval_mode"].default is fields["retrieval_mode"].default is RetrievalMode.HYBRID
    assert lc["alpha"].default is fields["alpha"].default is None  # None: the model's fitted weight, else 0.7
    assert lc["normalization"].default is fields["normalization"].default is None
    assert lc["fusion"].default == fields["fusion"].default == "convex"
    assert lc["rrf_k"].default == fields["rrf_k"].default == DEFAULT_RRF_K
    assert lc["candidates"].default == fields["candidates"].default == DEFAULT_CANDIDATES


def test_modes_parse_alike_in_both_stores() -> None:
    fake = DeterministicFakeEmbedding(size=8)
    assert LCStore(fake, retrieval_mode="lexical").retrieval_mode is RetrievalMode.SPARSE
    assert LIStore(retrieval_mode="lexical").retrieval_mode is RetrievalMode.SPARSE
    for make in (lambda: LCStore(fake, retrieval_mode="bm25"), lambda: LIStore(retrieval_mode="bm25")):
        with pytest.raises(ValueError, match="retrieval mode must be one of"):
            make()
    for make in (lambda: LCStore(fake, candidates=0), lambda: LIStore(candidates=0)):
        with pytest.raises(ValueError, match="candidates must be a positive int"):
            make()


def test_hybrid_candidates_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="candidates"):
        store = LIStore(hybrid_candidates=7)
    assert store.candidates == 7
    with pytest.warns(DeprecationWarning, match="candidates"):
        assert store.hybrid_candidates == 7


def test_llamaindex_sparse_and_text_search_map_to_sparse() -> None:
    fake = DeterministicFakeEmbedding(size=8)
    lc, li = LCStore(fake), LIStore()
    texts = {"c": "cats purr", "d": "dogs bark", "f": "fish swim"}
    lc.add_texts(list(texts.values()), ids=list(texts))
    li.add([TextNode(id_=i, text=t, embedding=fake.embed_query(t)) for i, t in texts.items()])
    for mode in (VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.TEXT_SEARCH):
        got = li.query(VectorStoreQuery(query_str="dogs", mode=mode, similarity_top_k=2))
        assert got.ids == ["d"] and got.nodes[0].metadata["retrieval_mode"] == "sparse"
    assert [d.id for d in lc.similarity_search("dogs", k=2, retrieval_mode="sparse")] == ["d"]


def test_aget_by_ids_runs_off_the_event_loop() -> None:
    seen: list[threading.Thread] = []

    class Recording(LCStore):
        def get_by_ids(self, ids, /):  # type: ignore[no-untyped-def, override]
            seen.append(threading.current_thread())
            return super().get_by_ids(ids)

    store = Recording(DeterministicFakeEmbedding(size=8))
    store.add_texts(["x"], ids=["a"])
    assert [d.id for d in asyncio.run(store.aget_by_ids(["a"]))] == ["a"]
    assert seen and seen[0] is not threading.main_thread()


def test_the_bundled_model_loads_once_whichever_adapter_asks() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc, li = GaussianEmbeddings(), GaussianEmbedding()
    assert lc._encoder is li._encoder is load_encoder(None) is load_encoder(BUNDLED_MODEL_NAME)


def test_both_embeddings_take_the_inference_backend() -> None:
    lc, li = GaussianEmbeddings(backend="torch"), GaussianEmbedding(backend="torch")
    assert lc._encoder is li._encoder is load_encoder(None, None, "torch")
    assert lc._encoder.inference_backend == "torch" and lc._encoder is not load_encoder(None)
    for make in (lambda: GaussianEmbeddings(backend="tensorrt"), lambda: GaussianEmbedding(backend="tensorrt")):
        with pytest.raises(ValueError, match="tensorrt"):
            make()
