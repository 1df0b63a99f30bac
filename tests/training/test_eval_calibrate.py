"""Calibration on the user's own corpus: ``ragcun-eval calibrate`` writing a model folder, ``judge`` and
``calibrate --judgements`` (with their bad-input errors), on a SciFact slice and the bundled model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from repo_paths import scifact_slice

from ragcun import GaussianEncoder, GaussianRetriever
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun_eval.cli import main


@pytest.fixture(scope="module")
def beir(tmp_path_factory) -> Path:
    """30 SciFact test queries and a 120-doc corpus, as a BEIR folder."""
    return scifact_slice(tmp_path_factory.mktemp("beir") / "scifact-slice", max_queries=30, max_docs=120)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> list[str]:
    return ["--cache-dir", str(tmp_path_factory.mktemp("cache"))]


@pytest.fixture(scope="module")
def calibrated(beir: Path, cache: list[str], tmp_path_factory) -> Path:
    """``calibrate --max-queries 12 --seed 3 --output DIR`` on the bundled Gaussian model."""
    out = tmp_path_factory.mktemp("models") / "calibrated"
    assert main(["calibrate", str(beir), "--split", "test", "--max-queries", "12", "--seed", "3",
                 "--model", "gaussian", "--output", str(out), *cache]) == 0
    return out


def test_calibrate_writes_a_model_folder_with_the_new_calibrator(calibrated: Path, bundled_encoder) -> None:
    model = GaussianEncoder(str(calibrated))
    cal = model.relevance_calibrator
    assert (calibrated / "config_sentence_transformers.json").is_file() and (calibrated / "relevance_calibrator.json").is_file()
    assert cal is not None and cal.n_pairs == 120 and "12 queries" in cal.fitted_on
    assert cal.hybrid is not None and cal.hybrid.n_pairs == 120  # the same queries' top-10 hybrid hits
    assert cal != bundled_encoder.relevance_calibrator
    texts = ["Tides are caused by the Moon.", "Hamlet is a play."]
    np.testing.assert_allclose(model.encode_document(texts, convert_to_numpy=True),
                               bundled_encoder.encode_document(texts, convert_to_numpy=True), atol=1e-5)
    assert bundled_encoder.relevance_calibrator == GaussianEncoder().relevance_calibrator  # the source model is untouched


def test_the_stores_score_with_the_new_calibrator(calibrated: Path, bundled_encoder) -> None:
    from langchain_ragcun import GaussianEmbeddings, GaussianVectorStore
    from llama_index.embeddings.ragcun import GaussianEmbedding

    cal = RelevanceCalibrator.load(calibrated)
    assert cal is not None
    docs = ["The Moon's gravity raises the tides.", "Hamlet is a tragedy by Shakespeare.", "Vaccines train immunity."]
    retriever = GaussianRetriever(str(calibrated))
    retriever.add_documents(docs)
    (_, dist, score), = retriever.retrieve_with_scores("what causes tides", 1, mode="dense")
    assert score == pytest.approx(float(cal([dist])[0])) and score != pytest.approx(
        float(bundled_encoder.relevance_calibrator([dist])[0]))
    lc = GaussianVectorStore.from_texts(docs, GaussianEmbeddings(model_name=str(calibrated)))
    assert lc.store.calibrator == cal
    assert GaussianEmbedding(model_name=str(calibrated)).relevance_calibrator == cal


def test_max_queries_is_reproducible_and_takes_all_when_too_many(beir: Path, cache: list[str], calibrated: Path,
                                                                  tmp_path: Path, capsys) -> None:
    again = tmp_path / "again"
    assert main(["calibrate", str(beir), "--split", "test", "--max-queries", "12", "--seed", "3",
                 "--model", "gaussian", "--output", str(again), *cache]) == 0
    assert RelevanceCalibrator.load(again) == RelevanceCalibrator.load(calibrated)
    capsys.readouterr()
    assert main(["calibrate", str(beir), "--split", "test", "--max-queries", "500", "--model", "gaussian", *cache]) == 0
    printed = capsys.readouterr()
    assert "has 30 queries (asked for 500): using all" in printed.err and "from 300 pairs" in printed.out
    assert "held out" not in printed.out  # every query was drawn: none left to measure on


def test_calibrate_measures_on_the_queries_it_did_not_draw(beir: Path, cache: list[str], tmp_path: Path,
                                                           capsys) -> None:
    """``--max-queries`` fits on a draw and reports the ECE on the split's other queries, as ``claims`` measures it."""
    from ragcun_eval.beir import load_beir
    from ragcun_eval.claims import measure_claims
    from ragcun_eval.models import Embedder, parse_model_spec
    from ragcun_eval.retrieval import run_model

    assert main(["calibrate", str(beir), "--split", "test", "--max-queries", "12", "--seed", "3", "--model", "gaussian",
                 "--calibrator-only", "--output", str(tmp_path), *cache]) == 0
    out = capsys.readouterr().out
    calibrator = RelevanceCalibrator.load(tmp_path)
    whole = load_beir(beir, "test")
    drawn = whole.subset(12, None, 3)
    rest = whole.without_queries(drawn)
    assert len(rest.queries) == 18 and not set(rest.queries) & set(drawn.queries)
    embedder = Embedder(cache[1])
    dense, hybrid = (measure_claims(run_model(rest, parse_model_spec(m), embedder), rest, calibrator=calibrator).ece
                     for m in ("gaussian", "gaussian:hybrid"))
    assert f"the test split's other 18 queries: ECE {dense:.4f} dense, {hybrid:.4f} hybrid" in out
    assert "(the model's own calibrator: ECE " in out


def test_output_must_be_a_model_folder_or_new(beir: Path, cache: list[str], tmp_path: Path, capsys) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    rc = main(["calibrate", str(beir), "--split", "test", "--model", "gaussian", "--output", str(tmp_path / "notes"), *cache])
    assert rc == 2 and "is not a model folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["keep.txt"]
    rc = main(["calibrate", str(beir), "--split", "test", "--model", "bundled:l2", "--output", str(tmp_path / "m"), *cache])
    assert rc == 2 and "is not one" in capsys.readouterr().err and not (tmp_path / "m").exists()
    rc = main(["calibrate", str(beir), "--split", "test", "--model", "bundled:l2", "--calibrator-only",
               "--output", str(tmp_path / "c"), *cache])
    assert rc == 0 and [p.name for p in (tmp_path / "c").iterdir()] == ["relevance_calibrator.json"]


@pytest.fixture(scope="module")
def sheet(beir: Path, cache: list[str], tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """``judge`` on the slice's corpus and a plain-text query file: the sheet and its rows."""
    folder = tmp_path_factory.mktemp("judge")
    queries = folder / "queries.txt"
    texts = [json.loads(line)["text"] for line in (beir / "queries.jsonl").read_text().splitlines()]
    queries.write_text("\n".join(texts[:10]) + "\n")
    out = folder / "judgements.csv"
    assert main(["judge", str(beir / "corpus.jsonl"), str(queries), "--queries", "4", "--seed", "1",
                 "--output", str(out), *cache]) == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return queries, out, rows


def test_judge_writes_the_top_10_hits_to_fill_in(sheet) -> None:
    queries, out, rows = sheet
    assert list(rows[0]) == ["query_id", "query", "doc_id", "rank", "distance", "text", "relevant"]
    assert len(rows) == 40 and len({r["query_id"] for r in rows}) == 4 and all(r["relevant"] == "" for r in rows)
    lines = queries.read_text().splitlines()
    assert all(lines[int(r["query_id"]) - 1] == r["query"] for r in rows)  # ids are line numbers
    for q in {r["query_id"] for r in rows}:
        mine = [r for r in rows if r["query_id"] == q]
        assert [int(r["rank"]) for r in mine] == list(range(1, 11))
        assert [float(r["distance"]) for r in mine] == sorted(float(r["distance"]) for r in mine)
    assert all(len(r["text"]) <= 300 for r in rows)


def _filled(rows: list[dict], path: Path, change=None) -> Path:
    """The sheet with rank 1 judged relevant, the rest not; ``change(rows)`` edits it first."""
    rows = [{**r, "relevant": "1" if r["rank"] == "1" else "0"} for r in rows]
    if change is not None:
        rows = change(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_calibrate_from_judgements_writes_a_model(sheet, beir: Path, cache: list[str], tmp_path: Path, capsys) -> None:
    queries, _, rows = sheet
    filled = _filled(rows, tmp_path / "filled.csv")
    out = tmp_path / "model"
    rc = main(["calibrate", str(beir / "corpus.jsonl"), str(queries), "--judgements", str(filled),
               "--output", str(out), *cache])
    assert rc == 0, capsys.readouterr().err
    cal = GaussianEncoder(str(out)).relevance_calibrator
    assert cal is not None and cal.n_pairs == 40 and cal.n_relevant == 4 and "filled.csv" in cal.fitted_on
    assert cal.hybrid is None  # a sheet of dense hits: hybrid hits are scored by their distance alone
    # the fit is at the model's own distances: the sheet's
    d = np.array([float(r["distance"]) for r in rows])
    y = np.array([r["rank"] == "1" for r in rows])
    expected = RelevanceCalibrator.fit(d, y)
    np.testing.assert_allclose([cal.intercept, cal.slope], [expected.intercept, expected.slope], rtol=1e-3)


def _set(line: int, column: str, value: str):
    def change(rows: list[dict]) -> list[dict]:
        rows[line - 2][column] = value  # file line 1 is the header
        return rows
    return change


@pytest.mark.parametrize("change, where, problem", [
    (_set(5, "query_id", "999"), ":5:", "unknown query id '999'"),
    (_set(7, "doc_id", "no-such-doc"), ":7:", "unknown document id 'no-such-doc'"),
    (_set(6, "query", "an edited query"), ":6:", "reads differently in the queries file"),
    (_set(9, "relevant", "2"), ":9:", "relevant must be 1 or 0; got '2'"),
    (_set(4, "relevant", "yes"), ":4:", "relevant must be 1 or 0; got 'yes'"),
    (_set(3, "relevant", ""), ":3:", "fill it in, or delete the row"),
    (lambda rows: [{**r, "relevant": "0"} for r in rows], "lines 2-41", "every judgement is 0"),
    (lambda rows: rows[:15], "lines 2-16", "15 judgements; a calibrator needs at least 20"),
    (lambda rows: [*rows, rows[0]], ":42:", "judged twice"),
])
def test_bad_judgements_are_one_error_line_and_write_nothing(sheet, beir: Path, cache: list[str], tmp_path: Path,
                                                             capsys, change, where: str, problem: str) -> None:
    queries, _, rows = sheet
    filled = _filled(rows, tmp_path / "bad.csv", change)
    out = tmp_path / "model"
    rc = main(["calibrate", str(beir / "corpus.jsonl"), str(queries), "--judgements", str(filled),
               "--output", str(out), *cache])
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert rc != 0 and len(lines) == 1 and "error:" in lines[0], printed.err
    assert str(filled) in lines[0] and where in lines[0] and problem in lines[0], lines[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_judge_reads_a_folder_of_text_files_and_refuses_a_cosine_model(tmp_path: Path, cache: list[str], capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n, text in enumerate(["The Moon raises tides.", "Hamlet is a play.", "Cells make ATP."]):
        (docs / f"d{n}.txt").write_text(text)
    (tmp_path / "q.txt").write_text("tides\n\nenergy in cells\n")
    out = tmp_path / "j.csv"
    assert main(["judge", str(docs), str(tmp_path / "q.txt"), "--queries", "5", "--output", str(out), *cache]) == 0
    assert "asked for 5 queries; there are 2: using all" in capsys.readouterr().out
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["query_id"] for r in rows} == {"1", "3"} and {r["doc_id"] for r in rows} == {"d0.txt", "d1.txt", "d2.txt"}
    assert main(["judge", str(docs), str(tmp_path / "q.txt"), "--model", "bundled", "--output", str(tmp_path / "x.csv"),
                 *cache]) == 2
    assert "ranks by L2" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
