"""Judging your own hits: ``ragcun-eval judge`` writes a CSV to fill in, ``calibrate --judgements`` reads it back.

``judge CORPUS QUERIES --model M --queries N --output judgements.csv`` samples ``N`` queries, retrieves
each one's top 10 documents by L2 with model ``M`` and writes one row per hit with the columns of
:data:`COLUMNS`; ``relevant`` is left empty for you to fill in with ``1`` or ``0``. CORPUS is a BEIR folder
or ``corpus.jsonl`` (ids from ``_id``), a JSONL file of ``{"text": ...}`` objects (optional ``_id``/``id``
and ``title``; otherwise the line number is the id), a text file (one document per line, its line number
the id) or a folder of ``.txt`` / ``.md`` files (their relative paths the ids). QUERIES is a BEIR
``queries.jsonl``, a JSONL file of ``{"text": ...}`` objects, or a text file (one query per line); ids as for
the corpus.

:func:`read_judgements` checks a filled CSV against the corpus and queries: an unknown query or document
id, a query text that differs from the queries file's, a label other than ``0``/``1``, a repeated (query, document) pair, fewer than
:data:`ragcun.scoring.calibrator.MIN_PAIRS` judgements or a single class is a ``ValueError`` naming the
file and line.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragcun.index.exact import nearest
from ragcun.io.atomic import atomic_file
from ragcun.scoring.calibrator import MIN_PAIRS
from ragcun.scoring.pairs import DEPTH
from ragcun_eval.beir import iter_jsonl_objects, iter_text_lines, load_corpus

COLUMNS = ("query_id", "query", "doc_id", "rank", "distance", "text", "relevant")
"""The judgement CSV's columns, in order; ``relevant`` is the one a judge fills in (``1`` or ``0``)."""
TEXT_CHARS = 300
"""Document text shown per row (whitespace collapsed, cut with ``…``)."""
TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Judgements:
    """Labelled (query id, document id, relevant) triples read from one CSV, in file order."""

    source: str
    query_ids: list[str]
    doc_ids: list[str]
    relevant: np.ndarray

    def __len__(self) -> int:
        return len(self.relevant)


def _at(path: Path, where: int | str, reason: str) -> str:
    """An error message naming the file, the line (or lines) and the problem."""
    return f"{path}:{where}: {reason}" if isinstance(where, int) else f"{path} ({where}): {reason}"


def _id_of(row: dict, lineno: int) -> str:
    for key in ("_id", "id"):
        if isinstance(row.get(key), (str, int)) and not isinstance(row.get(key), bool):
            return str(row[key])
    return str(lineno)


def _jsonl_texts(path: Path, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for lineno, row in iter_jsonl_objects(path):
        if not isinstance(row.get("text"), str):
            raise ValueError(_at(path, lineno, f"{what} has no 'text'"))
        key = _id_of(row, lineno)
        if key in out:
            raise ValueError(_at(path, lineno, f"duplicate {what} id {key!r}"))
        title = row.get("title")
        out[key] = f"{title if isinstance(title, str) else ''} {row['text']}".strip()
    return out


def _line_texts(path: Path) -> dict[str, str]:
    return {str(n): line.strip() for n, line in iter_text_lines(path) if line.strip()}


def load_texts(path: str | Path, what: str) -> dict[str, str]:
    """``{id: text}`` of a corpus (``what="document"``) or query file (``what="query"``); see the module docstring."""
    path = Path(path)
    if what == "document" and path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return dict(zip(*load_corpus(path / "corpus.jsonl")))
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in TEXT_SUFFIXES)
        texts = {str(f.relative_to(path)): f.read_text(encoding="utf-8").strip() for f in files}
        out = {k: t for k, t in texts.items() if t}
    elif not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    else:
        out = _jsonl_texts(path, what) if path.suffix.lower() in (".jsonl", ".json") else _line_texts(path)
    if not out:
        raise ValueError(f"{path}: no {what} texts found")
    return out


def sample_queries(queries: dict[str, str], n: int | None, seed: int = 0) -> tuple[list[str], str | None]:
    """``n`` query ids drawn reproducibly (``seed``), in file order, and a note when ``n`` exceeds the queries."""
    ids = list(queries)
    if n is None or n >= len(ids):
        note = None if n is None or n == len(ids) else f"asked for {n} queries; there are {len(ids)}: using all"
        return ids, note
    chosen = set(random.Random(seed).sample(ids, n))
    return [q for q in ids if q in chosen], None


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_CHARS else flat[:TEXT_CHARS - 1] + "…"


def write_judging_sheet(path: Path, query_ids: list[str], queries: dict[str, str], doc_ids: list[str],
                        docs: dict[str, str], query_vectors: np.ndarray, doc_vectors: np.ndarray,
                        depth: int = DEPTH) -> int:
    """Write the CSV of each query's ``depth`` nearest documents (L2), ``relevant`` empty; returns the row count."""
    rows, squared = nearest(query_vectors, doc_vectors, depth)
    n = 0
    with atomic_file(path) as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        for q, hits, d2 in zip(query_ids, rows.tolist(), squared.tolist()):
            for rank, (j, dd) in enumerate(zip(hits, d2), 1):
                out.writerow([q, queries[q], doc_ids[j], rank, f"{np.sqrt(dd):.6f}", _shown(docs[doc_ids[j]]), ""])
                n += 1
    return n


def read_judgements(path: str | Path, queries: dict[str, str], docs: dict[str, str]) -> Judgements:
    """The labelled rows of a filled judgement CSV, checked against ``queries`` and ``docs`` (``{id: text}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"judgements file {path} does not exist")
    q_ids, d_ids, labels, seen = [], [], [], set()
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("query_id", "doc_id", "relevant") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(_at(path, 1, f"missing column(s) {missing} (a judgement CSV has {list(COLUMNS)})"))
        for row in reader:
            line = reader.line_num
            q, d, label = (row.get(c) or "" for c in ("query_id", "doc_id", "relevant"))
            if q not in queries:
                raise ValueError(_at(path, line, f"unknown query id {q!r} (not in the queries file)"))
            if row.get("query") not in (None, queries[q]):
                raise ValueError(_at(path, line, f"query {q!r} reads differently in the queries file "
                                                 "(was it edited after judging? judge again)"))
            if d not in docs:
                raise ValueError(_at(path, line, f"unknown document id {d!r} (not in the corpus)"))
            if label.strip() not in ("0", "1"):
                raise ValueError(_at(path, line, f"relevant must be 1 or 0; got {label!r}"
                         + (" (fill it in, or delete the row)" if not label.strip() else "")))
            if (q, d) in seen:
                raise ValueError(_at(path, line, f"query {q!r} and document {d!r} are judged twice"))
            seen.add((q, d))
            q_ids.append(q)
            d_ids.append(d)
            labels.append(label.strip() == "1")
    last = f"lines 2-{len(labels) + 1}"
    if len(labels) < MIN_PAIRS:
        raise ValueError(_at(path, last, f"{len(labels)} judgements; a calibrator needs at least {MIN_PAIRS}"))
    if len(set(labels)) == 1:
        raise ValueError(_at(path, last, f"every judgement is {int(labels[0])}; a calibrator needs relevant (1) "
                                        "and irrelevant (0) hits"))
    return Judgements(str(path), q_ids, d_ids, np.array(labels, dtype=bool))
