"""ragcun-train's input formats: detection, loading, and bad lines reported with file and line."""

from __future__ import annotations

import json
import logging

import pytest

from ragcun_train.data import detect_format, document_views, load_training_set


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_pairs_report_bad_lines_with_file_and_line(tmp_path, caplog):
    f = _write(tmp_path / "pairs.jsonl", "\n".join([
        json.dumps({"query": "what is a cat", "positive": "A cat is a small feline."}),
        "{not json",
        json.dumps({"query": "", "positive": "empty query"}),
        json.dumps({"query": "no positive here"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"anchor": "dogs", "positive": "Dogs are canines."}),
    ]))
    with caplog.at_level(logging.WARNING):
        data = load_training_set(f)
    assert data.kind == "pairs" and data.anchors == ["what is a cat", "dogs"] and data.negatives is None
    assert data.corpus == data.positives and data.positive_ids == [0, 1]
    assert sum(data.skipped.values()) == 4
    for line in (2, 3, 4, 5):
        assert f"{f}:{line}" in caplog.text
    assert "not valid JSON" in caplog.text and "missing or empty 'query'" in caplog.text and "no 'positive' column" in caplog.text


def test_csv_with_header_and_triplets(tmp_path):
    f = _write(tmp_path / "t.csv", 'query,positive,negative\nq1,"p, one",n1\nq2,p2,\nq3,p3,n3\n')
    data = load_training_set(f)
    assert data.anchors == ["q1", "q3"] and data.negatives == ["n1", "n3"]
    assert data.skipped["empty 'negative'"] == 1
    assert data.corpus == ["p, one", "p3", "n1", "n3"] and data.positive_ids == [0, 1]


def test_csv_without_header_is_an_error_naming_the_line(tmp_path):
    f = _write(tmp_path / "t.csv", "q1,p1\n")
    with pytest.raises(ValueError, match=r"t\.csv:1: a CSV needs a header"):
        load_training_set(f)


def test_headerless_tsv_is_read_as_ms_marco_triples(tmp_path, caplog):
    f = _write(tmp_path / "triples.tsv", "q1\tp1\tn1\nq2\tp2\tn2\textra\tcols\nq3\tp3\tn3\n")
    with caplog.at_level(logging.WARNING):
        data = load_training_set(f)
    assert data.anchors == ["q1", "q3"] and data.negatives == ["n1", "n3"]
    assert f"{f}:2" in caplog.text and "expected 3 columns, got 5" in caplog.text


def _beir(root, train: bool = True):
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": "d2", "title": "", "text": "Dogs bark loudly at night and sleep all day."}]
    _write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    _write(root / "queries.jsonl", '{"_id": "q1", "text": "do cats purr"}\n{"_id": "q2", "text": "barking"}\n')
    if train:
        _write(root / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t0\n")
    _write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq2\td2\t1\n")
    return root


def test_beir_folder_gives_qrels_pairs_and_the_whole_corpus(tmp_path):
    root = _beir(tmp_path / "b")
    assert detect_format(root) == "beir"
    data = load_training_set(root)
    assert data.anchors == ["do cats purr"] and data.positives == ["Cats Cats purr."]
    assert data.corpus == ["Cats Cats purr.", "Dogs bark loudly at night and sleep all day."] and data.positive_ids == [0]
    assert data.skipped["score <= 0 (not relevant)"] == 1


def test_beir_malformed_corpus_line_names_file_and_line(tmp_path):
    root = _beir(tmp_path / "b")
    with (root / "corpus.jsonl").open("a") as f:
        f.write("{broken\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3"):
        load_training_set(root)


def test_beir_folder_without_train_qrels_is_a_corpus(tmp_path):
    root = _beir(tmp_path / "b", train=False)
    assert detect_format(root) == "corpus"
    data = load_training_set(root)
    assert data.kind == "corpus"
    assert ("Cats", "Cats purr.") in zip(data.anchors, data.positives)
    assert len(data) == 2  # the untitled doc is split into two halves of its words


def test_txt_corpus_counts_empty_and_short_lines(tmp_path, caplog):
    f = _write(tmp_path / "docs.txt", "First sentence here. Second sentence there.\n\ntoo short\n"
                                      "one two three four five six seven eight nine\n")
    with caplog.at_level(logging.WARNING):
        data = load_training_set(f)
    assert data.anchors == ["First sentence here.", "one two three four"]
    assert data.positives == ["Second sentence there.", "five six seven eight nine"]
    assert data.skipped == {"empty document": 1, "document shorter than 8 words": 1}
    assert f"{f}:2" in caplog.text and f"{f}:3" in caplog.text


def test_jsonl_corpus_and_forced_format(tmp_path):
    f = _write(tmp_path / "c.jsonl", '{"title": "T", "text": "Body text."}\n{"no_text": 1}\n')
    assert detect_format(f) == "corpus"
    data = load_training_set(f, fmt="corpus")
    assert (data.anchors, data.positives, data.skipped["no 'text' field"]) == (["T"], ["Body text."], 1)


def test_folder_of_markdown_and_text_files(tmp_path):
    _write(tmp_path / "a.md", "# Heading\nThe body of the note.")
    _write(tmp_path / "b.txt", "Alpha sentence one. Beta sentence two.")
    _write(tmp_path / "ignored.bin", "x")
    data = load_training_set(tmp_path)
    assert data.kind == "corpus"
    assert list(zip(data.anchors, data.positives)) == [("Heading", "The body of the note."), ("Alpha sentence one.", "Beta sentence two.")]


def test_unknown_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_format(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="--format"):
        detect_format(_write(tmp_path / "x.parquet", ""))
    with pytest.raises(ValueError, match="no usable training rows"):
        load_training_set(_write(tmp_path / "bad.jsonl", '{"query": "q"}\n'))
    with pytest.raises(ValueError, match="unknown format"):
        load_training_set(tmp_path, fmt="xml")


def test_document_views_are_disjoint():
    assert document_views("Title", "Body") == ("Title", "Body")
    a, b = document_views("", "One. Two. Three. Four.")
    assert (a, b) == ("One. Two.", "Three. Four.")
    assert document_views("", "too few words") is None


def test_demo_is_a_small_beir_folder():
    from ragcun_train import DEMO_DIR

    assert detect_format(DEMO_DIR) == "beir"
    data = load_training_set(DEMO_DIR)
    assert len(data) == 919 and len(data.corpus) == 1200 and not data.skipped
    assert sum(f.stat().st_size for f in DEMO_DIR.rglob("*") if f.is_file()) < 2.2e6
    assert "Licence" in (DEMO_DIR / "README.md").read_text()


def test_csv_field_over_128_kib_loads(tmp_path):
    long_doc = "word " * 60_000  # 300 KB: over the csv module's default 128 KiB field limit
    f = _write(tmp_path / "long.csv", f'query,positive\nq1,"{long_doc}"\nq2,p2\n')
    data = load_training_set(f)
    assert data.anchors == ["q1", "q2"] and data.positives[0] == long_doc.strip()


def test_csv_with_a_utf8_byte_order_mark_reads_its_header(tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes("query,positive\nq1,p1\nq2,p2\n".encode("utf-8-sig"))
    assert load_training_set(f).anchors == ["q1", "q2"]
    j = tmp_path / "bom.jsonl"
    j.write_bytes((json.dumps({"query": "q", "positive": "p"}) + "\n").encode("utf-8-sig"))
    assert load_training_set(j).anchors == ["q"] and not load_training_set(j).skipped


@pytest.mark.parametrize("name", ["garbage.csv", "garbage.tsv", "garbage.jsonl", "garbage.txt"])
def test_binary_garbage_is_an_error_naming_the_file(tmp_path, name):
    f = tmp_path / name
    f.write_bytes(bytes(range(128, 256)) * 40 + b"\n" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="not UTF-8") as info:
        load_training_set(f, "corpus" if name.endswith(".txt") else "pairs")
    assert str(f) in str(info.value)


def test_malformed_csv_record_is_an_error_naming_file_and_line(tmp_path):
    f = _write(tmp_path / "quote.csv", 'query,positive\nq1,p1\nq2,"p2\nq3,p3\n')  # an unclosed quote would swallow the rest
    with pytest.raises(ValueError, match=r"quote\.csv:3: malformed CSV record \(unexpected end of data\)"):
        load_training_set(f)
    f = _write(tmp_path / "stray.csv", 'query,positive\nq1,"p1"x\n')
    with pytest.raises(ValueError, match=r"stray\.csv:2: malformed CSV record"):
        load_training_set(f)


def test_forced_format_that_does_not_fit_the_file_says_so(tmp_path):
    txt = _write(tmp_path / "docs.txt", "one document per line here\n")
    with pytest.raises(ValueError, match=r"--format pairs reads a \.jsonl, \.json, \.csv or \.tsv file, not a \.txt file") as info:
        load_training_set(txt, "pairs")
    assert "header" not in str(info.value) and "--format corpus" in str(info.value)
    with pytest.raises(ValueError, match="--format beir needs a folder"):
        load_training_set(txt, "beir")
    with pytest.raises(ValueError, match="--format corpus reads"):
        load_training_set(_write(tmp_path / "p.csv", "query,positive\nq,p\n"), "corpus")


def test_a_corpus_fit_needs_two_documents_and_says_so(tmp_path):
    from ragcun_train.config import TrainConfig
    from ragcun_train.rows import load_whole_documents

    one = _write(tmp_path / "one.jsonl", '{"_id": "1", "text": "apples are red"}\nnot json\n')
    with pytest.raises(ValueError, match=r"one\.jsonl: 1 document to fit on, at least 2 needed \(skipped: "):
        load_whole_documents(one, TrainConfig())
    two = _write(tmp_path / "two.jsonl", '{"_id": "1", "text": "apples are red"}\n{"_id": "2", "text": "skies are blue"}\n')
    assert len(load_whole_documents(two, TrainConfig()).loaded.corpus) == 2
