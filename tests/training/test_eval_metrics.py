"""ragcun_eval.metrics and ragcun_eval.beir against hand-computed values and malformed inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragcun_eval.beir import find_beir_dirs, load_beir, load_qrels
from ragcun_eval.metrics import METRICS, average_precision_at_k, evaluate, mrr_at_k, ndcg_at_k, recall_at_k

# Judged: a (grade 2), b (grade 1), c (grade 1, never retrieved), z (judged irrelevant).
QRELS = {"a": 2, "b": 1, "c": 1, "z": 0}
RANKED = ["x", "a", "z", "b"]


def test_ndcg_hand_computed() -> None:
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # a at rank 2, b at rank 4
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # a, b, c in ideal order
    assert ndcg_at_k(RANKED, QRELS, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKED, QRELS, 10) == pytest.approx(0.540586, abs=1e-6)
    assert ndcg_at_k(RANKED, QRELS, 1) == 0.0
    assert ndcg_at_k(["a", "b", "c"], QRELS, 10) == pytest.approx(1.0)
    # the ideal DCG is cut at k as well: with k = 2, ideal is a, b
    assert ndcg_at_k(["a", "c"], QRELS, 2) == pytest.approx(1.0)
    assert ndcg_at_k(RANKED, {"q": 0}, 10) == 0.0


def test_recall_mrr_map_hand_computed() -> None:
    assert recall_at_k(RANKED, QRELS, 10) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, QRELS, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, QRELS, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(RANKED, QRELS, 1) == 0.0
    # precision at the relevant ranks 2 and 4 is 1/2 and 2/4; three relevant docs in all
    assert average_precision_at_k(RANKED, QRELS, 100) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert average_precision_at_k(RANKED, QRELS, 3) == pytest.approx((1 / 2) / 3)


def test_evaluate_averages_over_judged_queries() -> None:
    qrels = {"q1": QRELS, "q2": {"d": 1}}
    run = {"q1": RANKED}  # q2 missing from the run: scores 0
    out = evaluate(run, qrels)
    assert set(out) == set(METRICS)
    assert out["mrr@10"] == pytest.approx(0.25)
    assert out["recall@100"] == pytest.approx(1 / 3)
    assert evaluate({"q1": RANKED, "q2": ["d"]}, qrels)["ndcg@10"] == pytest.approx((0.540586 + 1) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="no judged"):
        evaluate(run, {})


def _write_beir(root: Path, qrels_lines: list[str], corpus_extra: str = "") -> Path:
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "title": "Title", "text": "body one"}, {"_id": "d2", "title": "", "text": "body two"}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n" + corpus_extra)
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n')
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels_lines) + "\n")
    return root


def test_load_beir(tmp_path: Path) -> None:
    root = _write_beir(tmp_path / "toy", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t0", "q2\td2\t0"])
    data = load_beir(root)
    assert data.name == "toy" and data.doc_ids == ["d1", "d2"]
    assert data.doc_texts == ["Title body one", "body two"]
    assert data.queries == {"q1": "first"}  # q2 has no relevant document
    assert data.qrels == {"q1": {"d1": 1, "d2": 0}}
    assert find_beir_dirs(tmp_path) == [root]


def test_load_errors_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_beir(tmp_path / "nope")
    root = _write_beir(tmp_path / "bad", ["q1\td1\tone"])
    with pytest.raises(ValueError, match=r"test\.tsv:1: score 'one'"):
        load_qrels(root / "qrels" / "test.tsv")
    (root / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1 d2 1\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2: expected 3"):
        load_beir(root)
    (root / "qrels" / "test.tsv").write_text("q1\td9\t1\n")
    with pytest.raises(ValueError, match="d9.*not in corpus"):
        load_beir(root)
    bad = _write_beir(tmp_path / "bad2", ["q1\td1\t1"], corpus_extra="{not json\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3: not valid JSON"):
        load_beir(bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_beir(root, split="dev")


def test_scifact_subset() -> None:
    from repo_paths import shared_path

    data = load_beir(shared_path("data", "beir", "scifact"))
    assert (len(data.doc_ids), len(data.queries)) == (5183, 300)
    small = data.subset(max_queries=10, max_docs=40)
    assert len(small.queries) == 10 and len(small.doc_ids) == 40
    assert all(d in set(small.doc_ids) for rel in small.qrels.values() for d in rel)
