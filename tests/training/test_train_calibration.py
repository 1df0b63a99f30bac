"""ragcun-train's relevance calibrator: labelled queries held back from training, the fit on them, the saved file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from repo_paths import shared_path

from ragcun import GaussianEncoder
from ragcun.scoring.calibrator import FILE, RelevanceCalibrator
from ragcun_eval.beir import load_beir
from ragcun_train import train
from ragcun_train.calibration import MAX_HELD, HeldOut, held_out_calibrator, hold_out
from ragcun_train.data import TrainingSet


def _pairs(n_queries: int, kind: str = "pairs") -> TrainingSet:
    """Query i has positive i, and every third query a second positive (i + 1)."""
    anchors, positives, ids = [], [], []
    for i in range(n_queries):
        for j in ([i, i + 1] if i % 3 == 0 else [i]):
            anchors.append(f"query {i}")
            positives.append(f"doc {j}")
            ids.append(j)
    return TrainingSet(kind, "toy", anchors, positives, None, [f"doc {j}" for j in range(n_queries + 1)], ids)


def test_hold_out_keeps_a_tenth_of_the_queries_out_of_training() -> None:
    data = _pairs(300)
    kept, held = hold_out(data, seed=1)
    assert held is not None and len(held.queries) == 30 and len(set(held.queries)) == 30
    assert not set(held.queries) & set(kept.anchors)  # no row of a held-back query is trained on
    assert len(kept) + sum(len(r) for r in held.relevant) == len(data)
    for query, relevant in zip(held.queries, held.relevant):
        i = int(query.split()[1])
        assert relevant == ({i, i + 1} if i % 3 == 0 else {i})
    assert kept.corpus == data.corpus  # held-back queries still search the whole corpus
    assert hold_out(data, seed=1)[1] == held and hold_out(data, seed=2)[1] != held
    assert len(hold_out(_pairs(20_000), 0)[1].queries) == MAX_HELD
    for too_few in (_pairs(99), _pairs(300, kind="corpus")):  # too few labelled queries; no labels at all
        assert hold_out(too_few, 0) == (too_few, None)


def test_held_out_calibrator_fits_on_held_back_hits() -> None:
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((500, 16))
    n = 200
    queries = corpus[:n] + rng.standard_normal((n, 16)) * rng.uniform(0.2, 1.2, (n, 1))
    held = HeldOut([f"q{i}" for i in range(n)], [{i} for i in range(n)])
    cal = held_out_calibrator(queries, corpus, held, "/data/toy.jsonl")
    assert isinstance(cal, RelevanceCalibrator) and cal.slope < 0
    assert cal.n_pairs == n * 10 and cal.fitted_on == "toy.jsonl: top-10 hits of 200 held-back queries"


def test_held_out_calibrator_without_relevant_hits_gives_none(caplog) -> None:
    corpus = np.random.default_rng(0).standard_normal((50, 4))
    held = HeldOut(["q"] * 5, [{49}] * 5)
    with caplog.at_level(logging.WARNING, logger="ragcun_train.calibration"):
        assert held_out_calibrator(corpus[:5], corpus, held, "toy") is None
    assert "no relevance calibrator" in caplog.text


@pytest.fixture(scope="module")
def labelled_dir(tmp_path_factory) -> Path:
    """120 SciFact *train* queries, their relevant abstracts and 150 others, as a BEIR training folder."""
    data = load_beir(shared_path("data", "beir", "scifact"), split="train")
    queries = list(data.queries)[:120]
    relevant = {d for q in queries for d in data.qrels[q]}
    docs = [d for d in data.doc_ids if d in relevant] + [d for d in data.doc_ids if d not in relevant][:150]
    text = dict(zip(data.doc_ids, data.doc_texts))
    root = tmp_path_factory.mktemp("labelled")
    (root / "qrels").mkdir()
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": text[d]}) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": data.queries[q]}) + "\n" for q in queries))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q in queries for d, s in data.qrels[q].items()))
    return root


def test_training_holds_back_queries_and_saves_the_calibrator(bundled_encoder, labelled_dir: Path, tmp_path: Path) -> None:
    """With the real model on 120 labelled queries: 20 held back, the fitted calibrator saved and loaded."""
    opts = dict(output=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), max_steps=2, batch_size=16,
                isotropy_sample=64, num_slices=32, show_progress=False)
    result = train(labelled_dir, **opts)
    report = result.report
    rows = report["data"]["rows"]
    assert report["data"]["held_back_queries"] == 20
    cal = RelevanceCalibrator.from_dict(report["calibrator"])
    assert cal.slope < 0 and cal.fitted_on == f"{labelled_dir.name}: top-10 hits of 20 held-back queries"
    assert GaussianEncoder(str(tmp_path / "out")).relevance_calibrator == cal
    assert "relevance calibrator (`relevance_calibrator.json`" in (tmp_path / "out" / "README.md").read_text()

    again = train(labelled_dir, **opts | {"overwrite": True, "calibrate": False})
    assert again.report["data"]["rows"] > rows and again.report["calibrator"] is None
    assert not (tmp_path / "out" / FILE).exists()  # the previous run's calibrator does not outlive its model
    assert GaussianEncoder(str(tmp_path / "out")).relevance_calibrator is None


def test_no_calibrate_flag() -> None:
    from ragcun_train.cli import build_parser

    assert build_parser().parse_args(["--no-calibrate"]).calibrate is False
    assert build_parser().parse_args([]).calibrate is True
