"""The BEIR loader: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` of one folder.

Usage::

    from ragcun_eval.beir import load_beir
    data = load_beir("../shared/data/beir/scifact", split="test")
    data.doc_ids, data.doc_texts      # the corpus in file order; text = "title text" (BEIR's join)
    data.queries                      # {query id: text}, only queries judged in this split
    data.qrels                        # {query id: {doc id: graded relevance}}, as in the file

Queries are kept when the split's qrels give them at least one relevant document (score > 0);
that is the set BEIR / trec_eval average over. Errors name the file and line.
"""

from __future__ import annotations

import codecs
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, dict[str, int]]


@dataclass
class BeirDataset:
    """One BEIR split: the whole corpus, the judged queries and their qrels."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: Qrels

    def subset(self, max_queries: int | None = None, max_docs: int | None = None, seed: int = 0) -> BeirDataset:
        """A smaller copy for quick runs and tests: a random sample of ``max_queries`` queries and a
        corpus of their relevant documents plus random others, ``max_docs`` in all (at least the
        relevant ones). Corpus order is kept."""
        rng = random.Random(seed)
        qids = sorted(self.queries)
        if max_queries is not None and max_queries < len(qids):
            qids = sorted(rng.sample(qids, max_queries))
        keep = {d for q in qids for d in self.qrels[q]}
        if max_docs is not None:
            others = [d for d in self.doc_ids if d not in keep]
            keep |= set(rng.sample(others, max(0, min(len(others), max_docs - len(keep)))))
        else:
            keep = set(self.doc_ids)
        pairs = [(d, t) for d, t in zip(self.doc_ids, self.doc_texts) if d in keep]
        return BeirDataset(self.name, [d for d, _ in pairs], [t for _, t in pairs],
                           {q: self.queries[q] for q in qids}, {q: self.qrels[q] for q in qids})

    def without_queries(self, taken: BeirDataset) -> BeirDataset:
        """The same corpus with the queries (and qrels) of this split that ``taken`` does not hold."""
        rest = [q for q in self.queries if q not in taken.queries]
        return BeirDataset(self.name, self.doc_ids, self.doc_texts, {q: self.queries[q] for q in rest},
                           {q: self.qrels[q] for q in rest})


def raise_at(path: Path, lineno: int | None, reason: str) -> None:
    """The strict ``on_error`` of :func:`iter_jsonl_objects`: raise ``ValueError`` naming file and line."""
    raise ValueError(f"{path}:{lineno}: {reason}")


def iter_text_lines(path: Path, on_error: Callable[[Path, int | None, str], None] = raise_at) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of the UTF-8 file ``path`` (line ends kept, a leading byte-order mark dropped).

    A line that is not UTF-8 goes to ``on_error(path, lineno, reason)``, which raises (the default)
    or records and skips it.
    """
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                on_error(path, lineno, "not UTF-8 text (save the file as UTF-8)")
                continue
            yield lineno, line


def iter_jsonl_objects(path: Path, on_error: Callable[[Path, int | None, str], None] = raise_at) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each JSON object line of ``path``; blank lines are passed over.

    A line that is not UTF-8, not valid JSON or not an object goes to ``on_error(path, lineno, reason)``,
    which raises (the default) or records and skips it.
    """
    for lineno, line in iter_text_lines(path, on_error):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            on_error(path, lineno, f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            on_error(path, lineno, "not a JSON object")
            continue
        yield lineno, row


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (a BEIR folder needs corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    for lineno, row in iter_jsonl_objects(path):
        if not isinstance(row.get("_id"), (str, int)):
            raise ValueError(f"{path}:{lineno}: expected an object with an '_id'")
        yield lineno, row


def load_corpus(path: str | Path) -> tuple[list[str], list[str]]:
    """Doc ids and texts of a BEIR ``corpus.jsonl``; a text is ``title + " " + text``, stripped."""
    path = Path(path)
    ids, texts, seen = [], [], set()
    for lineno, row in _read_jsonl(path):
        doc_id = str(row["_id"])
        if doc_id in seen:
            raise ValueError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        ids.append(doc_id)
        texts.append(f"{row.get('title') or ''} {row.get('text') or ''}".strip())
    return ids, texts


def load_queries(path: str | Path) -> dict[str, str]:
    """``{query id: text}`` of a BEIR ``queries.jsonl``."""
    path = Path(path)
    out: dict[str, str] = {}
    for lineno, row in _read_jsonl(path):
        if not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{lineno}: query has no 'text'")
        out[str(row["_id"])] = row["text"]
    return out


def load_qrels(path: str | Path) -> Qrels:
    """``{query id: {doc id: score}}`` of a BEIR qrels TSV (``query-id corpus-id score``; the header line is optional)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    qrels: Qrels = {}
    for lineno, line in iter_text_lines(path):
        parts = line.rstrip("\r\n").split("\t")
        if not line.strip() or (lineno == 1 and parts[0] == "query-id"):
            continue
        if len(parts) != 3:
            raise ValueError(f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(parts)}")
        try:
            score = int(parts[2])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score {parts[2]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def load_beir(data_dir: str | Path, split: str = "test") -> BeirDataset:
    """Load one split of a BEIR folder; queries without a relevant document are dropped.

    Raises ``FileNotFoundError`` for a missing folder or file, ``ValueError`` (with file:line) for a
    malformed line or a qrels id absent from the corpus or queries.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"BEIR folder {root} does not exist")
    doc_ids, doc_texts = load_corpus(root / "corpus.jsonl")
    all_queries = load_queries(root / "queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    qrels = {q: rel for q, rel in load_qrels(qrels_path).items() if any(s > 0 for s in rel.values())}
    known_docs = set(doc_ids)
    for q, rel in qrels.items():
        if q not in all_queries:
            raise ValueError(f"{qrels_path}: query id {q!r} is not in queries.jsonl")
        missing = [d for d in rel if d not in known_docs]
        if missing:
            raise ValueError(f"{qrels_path}: document id {missing[0]!r} (query {q!r}) is not in corpus.jsonl")
    return BeirDataset(root.resolve().name, doc_ids, doc_texts, {q: all_queries[q] for q in qrels}, qrels)


def find_beir_dirs(root: str | Path, split: str = "test") -> list[Path]:
    """BEIR folders directly under ``root`` (those with ``corpus.jsonl`` and ``qrels/<split>.tsv``), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist")
    return sorted(p for p in root.iterdir() if (p / "corpus.jsonl").is_file() and (p / "qrels" / f"{split}.tsv").is_file())
