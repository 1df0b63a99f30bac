"""Rebuild the bundled demo (a small BEIR folder) from BEIR SciFact in ``../shared/data/beir/scifact``.

    python training/ragcun_train/demo/build_demo.py [SCIFACT_DIR]

Keeps every SciFact training pair (``qrels/train.tsv``) and a random sample of
:data:`TEST_QUERIES` test queries (``qrels/test.tsv``, used only to report before/after) chosen
among those none of whose relevant documents is a training positive — so the before/after measures
ranking documents the head never saw as positives, not recalling memorised ones — with a
corpus of every document those qrels name plus random SciFact distractors, :data:`CORPUS_SIZE`
documents in all. Lines are written in SciFact's own order and format, so the output is
deterministic.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2].parent / "shared" / "data" / "beir" / "scifact"
TEST_QUERIES = 100
CORPUS_SIZE = 1200
SEED = 13


def _qrels(path: Path) -> list[tuple[str, str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.open(encoding="utf-8")]
    return [tuple(r) for r in rows[1:] if len(r) == 3]


def build(source: Path, target: Path = HERE) -> dict[str, int]:
    """Write corpus.jsonl, queries.jsonl and qrels/{train,test}.tsv into ``target``; return counts."""
    rng = random.Random(SEED)
    train = _qrels(source / "qrels" / "train.tsv")
    test_all = _qrels(source / "qrels" / "test.tsv")
    train_docs = {d for _, d, _ in train}
    seen = {q for q, d, _ in test_all if d in train_docs}
    test_qids = set(rng.sample(sorted({q for q, _, _ in test_all} - seen), TEST_QUERIES))
    test = [r for r in test_all if r[0] in test_qids]
    needed = {d for _, d, _ in train + test}
    corpus_lines = (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["_id"] for line in corpus_lines]
    others = sorted(set(ids) - needed)
    keep = needed | set(rng.sample(others, CORPUS_SIZE - len(needed)))
    qids = {q for q, _, _ in train + test}
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(f"{l}\n" for l, i in zip(corpus_lines, ids) if i in keep), encoding="utf-8")
    query_lines = (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    (target / "queries.jsonl").write_text("".join(f"{l}\n" for l in query_lines if json.loads(l)["_id"] in qids), encoding="utf-8")
    for name, rows in (("train", train), ("test", test)):
        body = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
        (target / "qrels" / f"{name}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body, encoding="utf-8")
    return {"docs": len(keep), "queries": len(qids), "train_pairs": len(train), "test_queries": len(test_qids), "test_qrels": len(test)}


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE))
