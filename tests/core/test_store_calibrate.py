"""Store-level calibration: ``DocStore.fit_calibrator`` on judged hits at the store's own distances, set on the
store, saved with it; the same through ``GaussianRetriever.calibrate`` and both framework stores."""

from __future__ import annotations

import numpy as np
import pytest

from ragcun import GaussianRetriever
from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Record

DIM = 8


def _store_and_judgements(seed: int = 0) -> tuple[DocStore, list, np.ndarray]:
    """60 random documents; 6 queries each judging its 10 nearest, the 3 nearest relevant (noisy)."""
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(60, DIM)).astype(np.float32)
    store = DocStore(L2Index(DIM))
    store.add([Record(f"d{i}", f"text {i}") for i in range(60)], docs)
    judgements = []
    for q in rng.normal(size=(6, DIM)).astype(np.float32):
        order = np.argsort(((docs - q) ** 2).sum(axis=1))[:10]
        judgements += [(q, f"d{j}", bool(rank < 3) != bool(rank == 1 and q[0] > 0)) for rank, j in enumerate(order)]
    return store, judgements, docs


def test_fit_calibrator_fits_at_the_store_distances_and_scores_with_it(tmp_path) -> None:
    store, judgements, docs = _store_and_judgements()
    assert store.calibrator is None
    cal = store.fit_calibrator(judgements)
    distances = [float(np.linalg.norm(q - docs[int(d[1:])])) for q, d, _ in judgements]
    expected = RelevanceCalibrator.fit(distances, [r for _, _, r in judgements])
    np.testing.assert_allclose([cal.intercept, cal.slope], [expected.intercept, expected.slope], rtol=1e-4)
    assert store.calibrator is cal and cal.n_pairs == 60
    hit = store.search(judgements[0][0], 1)[0]
    assert hit.relevance == pytest.approx(float(cal([hit.distance])[0])) and hit.score == hit.relevance
    store.save(tmp_path / "s")
    assert DocStore.load(tmp_path / "s")[0].calibrator == cal


@pytest.mark.parametrize("bad, problem", [
    (lambda j: [*j[:-1], (j[-1][0], "nope", True)], "document id 'nope' is not in the store"),
    (lambda j: [*j[:-1], (j[-1][0], j[-1][1], 2)], "relevant must be True/False or 1/0; got 2"),
    (lambda j: [*j[:-1], (j[-1][0], j[-1][1])], "expected (query, doc_id, relevant)"),
    (lambda j: [*j[:-1], ("a query text", j[-1][1], True)], "needs an embedding model"),
    (lambda j: [(q, d, False) for q, d, _ in j], "all relevant or all irrelevant"),
    (lambda j: j[:12], "at least 20"),
    (lambda j: [*j[:-1], (np.ones(DIM + 1), j[-1][1], True)], "dimension"),
])
def test_bad_judgements_leave_the_store_as_it_was(bad, problem: str) -> None:
    store, judgements, _ = _store_and_judgements()
    with pytest.raises(ValueError) as info:
        store.fit_calibrator(bad(judgements))
    assert problem in str(info.value) and store.calibrator is None


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [f"{topic} fact {n}: {topic} is studied by many people in many places." for topic in
            ("tides and the moon", "shakespeare plays", "cell energy and ATP", "volcano eruptions") for n in range(6)]


def _text_judgements(ids: list[str], texts: list[str]) -> list[tuple[str, str, bool]]:
    queries = {"why do tides happen": "tides", "who wrote hamlet": "shakespeare", "how do cells make energy": "cell"}
    return [(q, i, t.startswith(topic)) for q, topic in queries.items() for i, t in zip(ids, texts)]


def test_retriever_calibrates_on_query_texts_and_keeps_it_through_save(bundled_encoder, texts, tmp_path) -> None:
    r = GaussianRetriever(encoder=bundled_encoder)
    ids = r.add_documents(texts)
    bundled = r.store.calibrator
    cal = r.calibrate(_text_judgements(ids, texts))
    assert cal != bundled and r.store.calibrator is cal and cal.n_pairs == 72
    (_, dist, score), = r.retrieve_with_scores("why do tides happen", 1, mode="dense")
    assert score == pytest.approx(float(cal([dist])[0]))
    r.save(tmp_path / "r")
    assert GaussianRetriever.load(tmp_path / "r", encoder=bundled_encoder).store.calibrator == cal
