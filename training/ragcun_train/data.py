"""Training inputs: labelled pairs/triplets, BEIR folders and unlabelled corpora, detected from what a path holds.

Every loader returns a :class:`TrainingSet`: (anchor, positive[, negative]) rows plus the corpus
whose documents serve as negatives in frozen mode. Malformed lines, empty texts and missing
columns are logged with file and line number and counted in :attr:`TrainingSet.skipped`.
"""

from __future__ import annotations

import csv
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragcun_eval.beir import iter_jsonl_objects, iter_text_lines, load_corpus, load_qrels, load_queries

log = logging.getLogger(__name__)

FORMATS = ("auto", "pairs", "beir", "corpus")
QUERY_KEYS = ("query", "anchor")
POSITIVE_KEY = "positive"
NEGATIVE_KEY = "negative"
CORPUS_SUFFIXES = (".txt", ".md")
JSON_SUFFIXES = (".jsonl", ".json")
TABLE_SUFFIXES = (".csv", ".tsv")
# A CSV/TSV field may hold a whole document: lift the csv module's 128 KiB default.
MAX_FIELD_CHARS = min(sys.maxsize, 2**31 - 1)
MIN_VIEW_WORDS = 8
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MAX_LOGGED = 20


@dataclass
class TrainingSet:
    """Rows to train on and the corpus their positives come from.

    ``positive_ids[i]`` indexes ``corpus`` with the positive of row ``i``; ``skipped`` counts the
    dropped inputs by reason; ``labels`` (distillation) are a teacher's score margins, one per row.
    """

    kind: str
    source: str
    anchors: list[str]
    positives: list[str]
    negatives: list[str] | None
    corpus: list[str]
    positive_ids: list[int]
    skipped: Counter = field(default_factory=Counter)
    labels: list[float] | None = None

    def __len__(self) -> int:
        return len(self.anchors)

    def columns(self) -> dict[str, list[str]]:
        """The rows as named columns (``anchor``, ``positive``[, ``negative``])."""
        cols = {"anchor": self.anchors, "positive": self.positives}
        cols |= {"negative": self.negatives} if self.negatives is not None else {}
        return cols | ({"label": self.labels} if self.labels is not None else {})


class _Skips:
    """Logs a dropped input as ``file:line: reason`` (the first few of each reason) and counts it."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def __call__(self, path: Path, lineno: int | None, reason: str) -> None:
        self.counts[reason] += 1
        if self.counts[reason] <= _MAX_LOGGED:
            where = f"{path}:{lineno}" if lineno is not None else str(path)
            log.warning("%s: skipped (%s)", where, reason)
        elif self.counts[reason] == _MAX_LOGGED + 1:
            log.warning("%s: more lines skipped for %r; the total is logged at the end", path, reason)


def detect_format(path: str | Path) -> str:
    """``"pairs"``, ``"beir"`` or ``"corpus"`` from what ``path`` holds; ``ValueError`` when it is none of them."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"training data {p} does not exist")
    if p.is_dir():
        if (p / "corpus.jsonl").is_file():
            return "beir" if (p / "qrels" / "train.tsv").is_file() else "corpus"
        if any(f.suffix in CORPUS_SUFFIXES for f in p.iterdir() if f.is_file()):
            return "corpus"
        raise ValueError(f"{p}: a folder must be a BEIR folder (corpus.jsonl, qrels/train.tsv) or hold .txt/.md files")
    suffix = p.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return "pairs"
    if suffix in CORPUS_SUFFIXES:
        return "corpus"
    if suffix in JSON_SUFFIXES:
        for _, row in iter_jsonl_objects(p, _Skips()):
            if any(k in row for k in QUERY_KEYS):
                return "pairs"
            if "text" in row:
                return "corpus"
            raise ValueError(f"{p}: the first record has neither 'query'/'anchor' (pairs) nor 'text' (corpus); use --format")
        raise ValueError(f"{p}: no valid JSON record found")
    raise ValueError(f"{p}: cannot tell the format of a {suffix or 'suffix-less'} file; use --format pairs|beir|corpus")


def check_format(path: str | Path, fmt: str = "auto") -> str:
    """The format ``path`` will be read as: ``fmt``, or the detected one for ``"auto"``.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` when ``path`` cannot be
    read as ``fmt`` (a ``.txt`` forced to ``pairs``, a file forced to ``beir``, ...).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    p = Path(path)
    if fmt == "auto":
        return detect_format(p)
    if not p.exists():
        raise FileNotFoundError(f"training data {p} does not exist")
    suffix = "a folder" if p.is_dir() else f"a {p.suffix.lower() or 'suffix-less'} file"
    if fmt == "pairs" and (p.is_dir() or p.suffix.lower() not in JSON_SUFFIXES + TABLE_SUFFIXES):
        raise ValueError(f"{p}: --format pairs reads a .jsonl, .json, .csv or .tsv file, not {suffix}"
                         + ("; a .txt is read as a corpus, one document per line (--format corpus)" if p.suffix.lower() == ".txt" else ""))
    if fmt == "beir" and not (p.is_dir() and (p / "corpus.jsonl").is_file() and (p / "qrels" / "train.tsv").is_file()):
        raise ValueError(f"{p}: --format beir needs a folder with corpus.jsonl, queries.jsonl and qrels/train.tsv")
    if fmt == "corpus" and not (p.is_dir() or p.suffix.lower() in JSON_SUFFIXES + CORPUS_SUFFIXES):
        raise ValueError(f"{p}: --format corpus reads a .txt, .md, .jsonl or .json file or a folder, not {suffix}")
    return fmt


def load_training_set(path: str | Path, fmt: str = "auto") -> TrainingSet:
    """Load ``path`` as ``fmt`` (``auto`` detects it) and log what was kept and skipped."""
    path = Path(path)
    fmt = check_format(path, fmt)
    loader = {"pairs": _load_pairs, "beir": _load_beir, "corpus": _load_corpus}[fmt]
    data = loader(path)
    if not len(data):
        raise ValueError(f"{path}: no usable training rows (skipped: {dict(data.skipped) or 'none'})")
    log.info("%s (%s): %d training rows, %d corpus documents; skipped: %s", path, fmt, len(data), len(data.corpus),
             dict(data.skipped) or "none")
    return data


# -- pairs / triplets ------------------------------------------------------------------------------


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each CSV/TSV record; a malformed record is a ``ValueError`` naming file and line."""
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    lines = (line for _, line in iter_text_lines(path))
    reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"{path}:{start}: malformed {path.suffix.lstrip('.').upper()} record ({exc})") from None
        yield reader.line_num, row


def _table_rows(path: Path, skip: _Skips) -> Iterator[tuple[int, dict]]:
    """CSV/TSV rows as dicts; a headerless TSV is read as (query, positive[, negative]) like MS MARCO triples."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header: list[str] | None = None
    for lineno, row in _csv_records(path, delimiter):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            lowered = [c.strip().lower() for c in row]
            if any(k in lowered for k in QUERY_KEYS) and POSITIVE_KEY in lowered:
                header = lowered
                continue
            if delimiter == ",":
                raise ValueError(f"{path}:{lineno}: a CSV needs a header naming 'query' and 'positive' columns")
            header = ["query", "positive", "negative"]
        if len(row) > len(header) or (len(row) < 2):
            skip(path, lineno, f"expected {len(header)} columns, got {len(row)}")
            continue
        yield lineno, dict(zip(header, row))


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _load_pairs(path: Path) -> TrainingSet:
    skip = _Skips()
    rows = iter_jsonl_objects(path, skip) if path.suffix.lower() in (".jsonl", ".json") else _table_rows(path, skip)
    anchors, positives, negatives = [], [], []
    for lineno, row in rows:
        query_key = next((k for k in QUERY_KEYS if k in row), QUERY_KEYS[0])
        query, positive, negative = _text(row, query_key), _text(row, POSITIVE_KEY), _text(row, NEGATIVE_KEY)
        for key, value in ((query_key, query), (POSITIVE_KEY, positive)):
            if value is None:
                skip(path, lineno, f"missing or empty '{key}'" if key in row else f"no '{key}' column")
                break
        else:
            if NEGATIVE_KEY in row and negative is None:
                skip(path, lineno, f"empty '{NEGATIVE_KEY}'")
                continue
            anchors.append(query)
            positives.append(positive)
            negatives.append(negative)
    has_neg = [n is not None for n in negatives]
    if any(has_neg) and not all(has_neg):
        keep = [i for i, h in enumerate(has_neg) if h]
        skip.counts[f"no '{NEGATIVE_KEY}' in a file of triplets"] += len(anchors) - len(keep)
        log.warning("%s: %d rows without a negative dropped: a file mixes pairs and triplets", path, len(anchors) - len(keep))
        anchors, positives, negatives = ([xs[i] for i in keep] for xs in (anchors, positives, negatives))
    corpus, index = _dedupe(positives + (negatives if any(has_neg) else []))
    return TrainingSet("pairs", str(path), anchors, positives, negatives if any(has_neg) else None,
                       corpus, index[: len(positives)], skip.counts)


def _dedupe(texts: list[str]) -> tuple[list[str], list[int]]:
    """Unique texts in first-seen order, and each input's index among them."""
    ids: dict[str, int] = {}
    index = [ids.setdefault(t, len(ids)) for t in texts]
    return list(ids), index


# -- BEIR ------------------------------------------------------------------------------------------


def _load_beir(path: Path) -> TrainingSet:
    """(query, relevant document) rows from ``qrels/train.tsv``; the whole corpus serves as negatives."""
    skip = _Skips()
    doc_ids, doc_texts = load_corpus(path / "corpus.jsonl")
    queries = load_queries(path / "queries.jsonl")
    position = {d: i for i, d in enumerate(doc_ids)}
    qrels_path = path / "qrels" / "train.tsv"
    anchors, positives, positive_ids = [], [], []
    for qid, judged in load_qrels(qrels_path).items():
        for did, score in judged.items():
            if score <= 0:
                skip(qrels_path, None, "score <= 0 (not relevant)")
            elif qid not in queries:
                skip(qrels_path, None, "query id not in queries.jsonl")
            elif did not in position:
                skip(qrels_path, None, "document id not in corpus.jsonl")
            elif not queries[qid].strip() or not doc_texts[position[did]]:
                skip(qrels_path, None, "empty query or document text")
            else:
                anchors.append(queries[qid].strip())
                positives.append(doc_texts[position[did]])
                positive_ids.append(position[did])
    return TrainingSet("beir", str(path), anchors, positives, None, doc_texts, positive_ids, skip.counts)


# -- unlabelled corpora: JEPA views ------------------------------------------------------------------


def document_views(title: str, body: str) -> tuple[str, str] | None:
    """Two disjoint views of one document (context, target): its title and body, else two halves of its text.

    Halves split at a sentence boundary when the text has several sentences, otherwise at the
    middle word. ``None`` when the text is too short (fewer than :data:`MIN_VIEW_WORDS` words).
    """
    title, body = title.strip(), body.strip()
    if title and body:
        return title, body
    text = title or body
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) >= 2:
        half = len(sentences) // 2
        return " ".join(sentences[:half]), " ".join(sentences[half:])
    words = text.split()
    if len(words) < MIN_VIEW_WORDS:
        return None
    half = len(words) // 2
    return " ".join(words[:half]), " ".join(words[half:])


def _documents(path: Path, skip: _Skips) -> Iterator[tuple[Path, int | None, str, str]]:
    """(file, line, title, body) of each document in a corpus file or folder."""
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        path = path / "corpus.jsonl"
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in CORPUS_SUFFIXES)
        for f in files:
            text = f.read_text(encoding="utf-8", errors="replace").strip()
            first, _, rest = text.partition("\n")
            if f.suffix == ".md" and first.startswith("#"):
                yield f, None, first.lstrip("#").strip(), rest
            else:
                yield f, None, "", text
    elif path.suffix.lower() in (".jsonl", ".json"):
        for lineno, row in iter_jsonl_objects(path, skip):
            if not isinstance(row.get("text"), str):
                skip(path, lineno, "no 'text' field")
                continue
            title = row.get("title")
            yield path, lineno, title if isinstance(title, str) else "", row["text"]
    else:
        for lineno, line in iter_text_lines(path, skip):
            yield path, lineno, "", line


def load_documents(path: str | Path) -> tuple[list[str], list[str], Counter]:
    """Titles, bodies and skip counts of the non-empty documents of a corpus (``--format corpus`` input), in order."""
    skip = _Skips()
    titles, bodies = [], []
    for f, lineno, title, body in _documents(Path(path), skip):
        if not (title.strip() or body.strip()):
            skip(f, lineno, "empty document")
            continue
        titles.append(title.strip())
        bodies.append(body.strip())
    return titles, bodies, skip.counts


def document_texts(titles: list[str], bodies: list[str]) -> list[str]:
    """Each document as one text, its title and body joined as a BEIR corpus joins them (what a store indexes)."""
    return [f"{t} {b}".strip() for t, b in zip(titles, bodies)]


def _load_corpus(path: Path) -> TrainingSet:
    """Self-supervised (context, target) views of each document; the targets serve as negatives."""
    skip = _Skips()
    anchors, positives = [], []
    for f, lineno, title, body in _documents(path, skip):
        if not (title.strip() or body.strip()):
            skip(f, lineno, "empty document")
            continue
        views = document_views(title, body)
        if views is None:
            skip(f, lineno, f"document shorter than {MIN_VIEW_WORDS} words")
            continue
        anchors.append(views[0])
        positives.append(views[1])
    corpus, index = _dedupe(positives)
    return TrainingSet("corpus", str(path), anchors, positives, None, corpus, index, skip.counts)
