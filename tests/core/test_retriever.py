"""GaussianRetriever end to end on the real bundled model, plus DocStore mechanics."""

from __future__ import annotations

import numpy as np
import pytest

from ragcun.io.saves import SaveFormatError
from ragcun.model.encoder import GaussianEncoder
from ragcun.retriever import GaussianRetriever
from ragcun.store.doc_store import DocStore, Record, metadata_filter

DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Python is a popular programming language for data science.",
    "The Great Barrier Reef is the world's largest coral reef system.",
    "Mitochondria are the powerhouse of the cell and produce ATP.",
]


@pytest.fixture(scope="module")
def encoder() -> GaussianEncoder:
    return GaussianEncoder()


@pytest.fixture(scope="module")
def retriever(encoder: GaussianEncoder) -> GaussianRetriever:
    r = GaussianRetriever(encoder=encoder)
    r.add_documents(DOCS)
    return r


@pytest.mark.parametrize("query, expected", [
    ("Which city has the iron tower?", 0),
    ("How do plants make energy from sunlight?", 1),
    ("coding language for machine learning", 2),
])
def test_retrieve_finds_the_right_document(retriever: GaussianRetriever, query: str, expected: int) -> None:
    results = retriever.retrieve(query, top_k=3)
    assert results[0][0] == DOCS[expected]
    distances = [d for _, d in results]
    assert distances == sorted(distances) and all(d > 0 for d in distances)


def test_distances_are_euclidean_on_the_encoder_output(retriever: GaussianRetriever, encoder) -> None:
    query = "coral reefs in Australia"
    (doc, dist), = retriever.retrieve(query, top_k=1)
    q, d = encoder.encode([query, doc], convert_to_numpy=True)
    assert abs(dist - float(np.linalg.norm(q - d))) < 1e-3
    (_, dist2, score), = retriever.retrieve_with_scores(query, top_k=1)
    assert dist2 == pytest.approx(dist) and 0.0 <= score <= 1.0


def test_save_load_same_results_and_no_pickle(retriever: GaussianRetriever, encoder, tmp_path) -> None:
    retriever.save(tmp_path / "r")
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))
    again = GaussianRetriever.load(tmp_path / "r", encoder=encoder)
    assert len(again) == len(DOCS)
    assert again.retrieve("mitochondria ATP", 2) == retriever.retrieve("mitochondria ATP", 2)


def test_bad_inputs_raise_clear_errors(encoder, tmp_path) -> None:
    r = GaussianRetriever(encoder=encoder)
    with pytest.raises(ValueError, match=r"documents\[1\] is empty"):
        r.add_documents(["ok", "  "])
    with pytest.raises(ValueError, match=r"documents\[0\] is None"):
        r.add_documents([None])
    with pytest.raises(ValueError, match=r"query\[0\] is empty"):
        r.retrieve("")
    assert r.retrieve("anything") == []
    with pytest.raises(ValueError, match="model_path or encoder"):
        GaussianRetriever("x", encoder=encoder)
    r.add_documents(["one document"])
    r.save(tmp_path / "r")
    (tmp_path / "r" / "records.json").write_text("[]")
    with pytest.raises(SaveFormatError, match="records.json"):
        GaussianRetriever.load(tmp_path / "r", encoder=encoder)


def test_docstore_filters_mmr_and_replace() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((40, 8)).astype(np.float32)
    store = DocStore()
    store.add([Record(f"d{i}", f"text {i}", {"n": i, "even": i % 2 == 0}) for i in range(40)], vecs)
    hits = store.search(vecs[3], 5, metadata_filter({"even": True}))
    assert len(hits) == 5 and all(h.record.metadata["even"] for h in hits)
    hits = store.search(vecs[3], 5, metadata_filter({"n": {"$gte": 38}}))
    assert sorted(h.record.id for h in hits) == ["d38", "d39"]
    near = vecs[3] + 1e-3
    store.add([Record("dup", "near copy")], near[None])
    plain = [h.record.id for h in store.search(vecs[3], 2)]
    diverse = [h.record.id for h in store.mmr_search(vecs[3], 2, fetch_k=10, lambda_mult=0.3)]
    assert set(plain) == {"d3", "dup"} and diverse[0] in plain and "dup" not in diverse[1:] and len(diverse) == 2
    assert store.delete(["d3", "missing"]) == 1 and "d3" not in store and len(store.index.ids) == 40
    with pytest.raises(KeyError, match="missing"):
        store.delete(["missing"], missing_ok=False)
    store.add([Record("d4", "replaced")], vecs[:1])
    assert store.get(["d4"])[0].text == "replaced" and store.index.count == len(store) == 40
    with pytest.raises(ValueError, match="JSON"):
        store.add([Record("bad", "x", {"obj": object()})], vecs[:1])


def test_load_goes_through_init_and_keeps_the_saved_model_reference(retriever: GaussianRetriever, encoder,
                                                                    tmp_path) -> None:
    class Counted(GaussianRetriever):
        inits = 0

        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            type(self).inits += 1
            super().__init__(*args, **kwargs)

    retriever.save(tmp_path / "r")
    loaded = Counted.load(tmp_path / "r", encoder=encoder)
    assert Counted.inits == 1 and loaded.batch_size == 32 and loaded.model_path is None
    assert loaded.store.calibrator is encoder.relevance_calibrator
    sparse = loaded.retrieve("mitochondria ATP", 2, mode="sparse")  # no query vector: distances are nan
    assert [t for t, _ in sparse] == [t for t, _ in retriever.retrieve("mitochondria ATP", 2, mode="lexical")]
    assert sparse and "Mitochondria" in sparse[0][0]
