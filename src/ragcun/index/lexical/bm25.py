"""``BM25Index``: an incremental BM25 (Lucene variant) index over stored texts, framework-free.

Scores are exactly those of ``bm25s`` (``method="lucene"``, ``k1=1.5``, ``b=0.75``) on the same
tokens: for a query term ``t`` occurring ``tf`` times in a document of ``dl`` tokens,

    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score  = sum over query tokens t of idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl)),

with ``N`` the live documents, ``df`` counted over them and ``avgdl`` their mean length. Unlike
``bm25s``, which precomputes every score and must re-index the whole corpus after any change,
this index stores postings (term, document, tf) in immutable *segments*, as Lucene does: an add
writes a new segment (merged with its predecessors when they are no larger, so merging costs
O(n log n) over a corpus's life), a delete only marks its document dead, and ``df``, ``N`` and
``avgdl`` are computed at query time from the live postings of the query's terms. So every add,
upsert and delete is visible to the next query with no re-indexing.

Tokens come from an :class:`Analyzer` (lower-case, ``\\w\\w+`` words, a language's stop words,
Snowball stemming via PyStemmer; English by default), the same pipeline as ``bm25s.tokenize``.
A document whose text has no tokens (an embedding-only node) has no lexical entry and never
matches. Saved as JSON plus safetensors arrays, never pickle; the arrays' header records the SHA-256 of
the JSON beside them, so a load refuses a ``postings.safetensors`` written with another ``lexical.json``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ragcun.index.lexical.analyzer import Analyzer
from ragcun.index.protocol import LexicalMatches, check_ids, check_k


@dataclass(frozen=True)
class _Segment:
    """Immutable postings sorted by term: ``docs[starts[i]:starts[i+1]]`` hold ``terms[i]``."""

    terms: np.ndarray   # (T,) int64 term ids, ascending
    starts: np.ndarray  # (T + 1,) int64
    docs: np.ndarray    # (P,) int64 document keys
    tfs: np.ndarray     # (P,) float32 term frequencies

    @classmethod
    def build(cls, terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, presorted: bool = False) -> _Segment:
        """A segment from (term, doc, tf) triples with unique (term, doc) pairs, sorted by (term, doc) or not."""
        if not presorted and len(docs):
            order = np.argsort(terms * (int(docs.max()) + 1) + docs, kind="stable")
            terms, docs, tfs = terms[order], docs[order], tfs[order]
        uniq, first = np.unique(terms, return_index=True)
        return cls(uniq.astype(np.int64), np.append(first, len(terms)).astype(np.int64),
                   docs.astype(np.int64), tfs.astype(np.float32))

    @property
    def size(self) -> int:
        """Number of postings."""
        return len(self.docs)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(doc keys, tfs) of ``term`` (empty if absent)."""
        i = int(np.searchsorted(self.terms, term))
        if i == len(self.terms) or self.terms[i] != term:
            return self.docs[:0], self.tfs[:0]
        lo, hi = self.starts[i], self.starts[i + 1]
        return self.docs[lo:hi], self.tfs[lo:hi]

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Its postings as (term, doc, tf) arrays."""
        return np.repeat(self.terms, np.diff(self.starts)), self.docs, self.tfs


def _merge(segments: Sequence[_Segment], live: np.ndarray) -> _Segment:
    """One segment holding the live postings of ``segments``."""
    parts = [s.triples() for s in segments]
    terms, docs, tfs = (np.concatenate([p[i] for p in parts]) for i in range(3))
    keep = live[docs]
    return _Segment.build(terms[keep], docs[keep], tfs[keep])


class BM25Index:
    """String-keyed texts searched by BM25; add, upsert and delete are visible to the next query.

    ``analyzer`` turns text into terms (default: English, see :class:`Analyzer`); ``k1`` and ``b``
    are BM25's parameters (``bm25s``'s defaults). Thread-safe: one lock guards every method.
    """

    META = "lexical.json"
    """The JSON file :meth:`save` writes beside ``postings.safetensors``."""
    POSTINGS = "postings.safetensors"
    """The arrays file :meth:`save` writes; its header holds the SHA-256 of ``lexical.json`` (:data:`BOUND_TO`)."""
    BOUND_TO = "lexical_json_sha256"

    def __init__(self, analyzer: Analyzer | None = None, *, k1: float = 1.5, b: float = 0.75) -> None:
        if not k1 > 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 > 0 and 0 <= b <= 1; got k1={k1!r}, b={b!r}")
        self.analyzer = analyzer or Analyzer()
        self.k1, self.b = float(k1), float(b)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """Empty the index (the analyzer, parameters and lock stay)."""
        self._vocab: dict[str, int] = {}
        self._word_terms: dict[str, int] = {}  # word -> term id (-1: a stop word); a cache of the analyzer's work
        self._keys: dict[str, int] = {}   # id -> document key (live documents with terms only)
        self._ids: list[str | None] = []  # key -> id (None once dead)
        self._lengths = np.zeros(0, dtype=np.float32)
        self._live = np.zeros(0, dtype=bool)
        self._total_length = 0.0
        self._segments: list[_Segment] = []
        self._pending: dict[str, str] = {}  # id -> text added but not indexed yet (see add)

    @property
    def count(self) -> int:
        """Number of indexed documents (those whose text has at least one term)."""
        with self._lock:
            self._flush()
            return len(self._keys)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._flush()
            return key in self._keys

    @property
    def ids(self) -> list[str]:
        """The indexed ids."""
        with self._lock:
            self._flush()
            return list(self._keys)

    # -- writes -------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str | None]) -> None:
        """Queue ``texts`` under ``ids`` for indexing, replacing what an id had (at once: a replaced text
        never matches again); a text with no terms (or ``None``) is not indexed.

        Texts are analysed and indexed, all queued ones as one segment, by the next read (search,
        scores, count, save): an add costs no more than recording the texts, and many small adds
        cost one analysis pass and one segment.
        """
        ids = check_ids(ids)
        texts = list(texts)
        if len(texts) != len(ids):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("ids contain duplicates")
        bad = [i for i, t in zip(ids, texts) if t is not None and not isinstance(t, str)]
        if bad:
            raise ValueError(f"texts must be strings or None; id {bad[0]!r} has {type(texts[ids.index(bad[0])]).__name__}")
        with self._lock:
            self._drop([i for i in ids if i in self._keys])
            for i, text in zip(ids, texts):
                self._pending.pop(i, None)
                if text:
                    self._pending[i] = text

    def _flush(self) -> None:
        """Index the queued texts as one segment (under the lock)."""
        if not self._pending:
            return
        ids, texts = list(self._pending), list(self._pending.values())
        self._pending.clear()
        words = [self.analyzer.words(t) for t in texts]
        flat = list(chain.from_iterable(words))
        new = [w for w in dict.fromkeys(flat) if w not in self._word_terms]
        for word, term in zip(new, self.analyzer.terms(new)):
            self._word_terms[word] = -1 if term is None else self._vocab.setdefault(term, len(self._vocab))
        terms = np.fromiter(map(self._word_terms.__getitem__, flat), dtype=np.int64, count=len(flat))
        owner = np.repeat(np.arange(len(ids)), [len(w) for w in words])
        kept = terms >= 0
        terms, owner = terms[kept], owner[kept]
        sizes = np.bincount(owner, minlength=len(ids))
        indexed = [i for i, n in zip(ids, sizes.tolist()) if n]
        if not indexed:
            return
        first = len(self._ids)
        key_of = np.full(len(ids), -1, dtype=np.int64)
        key_of[sizes > 0] = np.arange(first, first + len(indexed))
        self._ids.extend(indexed)
        self._keys.update(zip(indexed, key_of[sizes > 0].tolist()))
        lengths = sizes[sizes > 0].astype(np.float32)
        self._lengths = np.concatenate([self._lengths, lengths])
        self._live = np.concatenate([self._live, np.ones(len(indexed), dtype=bool)])
        self._total_length += float(lengths.sum())
        span = len(self._ids)
        pairs, tfs = np.unique(terms * span + key_of[owner], return_counts=True)  # sorted by (term, doc)
        self._segments.append(_Segment.build(pairs // span, pairs % span, tfs, presorted=True))
        while len(self._segments) > 1 and self._segments[-2].size <= 2 * self._segments[-1].size:
            self._segments[-2:] = [_merge(self._segments[-2:], self._live)]

    def remove(self, ids: Sequence[str]) -> int:
        """Drop ``ids`` from the index; returns how many were indexed or queued (others are ignored)."""
        ids = check_ids(ids)
        with self._lock:
            unique = list(dict.fromkeys(ids))
            queued = sum(self._pending.pop(i, None) is not None for i in unique)
            present = [i for i in unique if i in self._keys]
            self._drop(present)
            return queued + len(present)

    def clear(self) -> None:
        """Drop everything (the analyzer and parameters are kept)."""
        with self._lock:
            self._reset()

    def _drop(self, ids: list[str]) -> None:
        if not ids:
            return
        keys = np.array([self._keys.pop(i) for i in ids], dtype=np.int64)
        self._live[keys] = False
        self._total_length -= float(self._lengths[keys].sum())
        for key in keys.tolist():
            self._ids[key] = None
        if int(self._live.sum()) * 2 < len(self._live) and self._segments:  # mostly dead: compact
            self._segments = [_merge(self._segments, self._live)]

    # -- queries ------------------------------------------------------------------------------
    def query_terms(self, query: str) -> list[str]:
        """The terms of ``query`` that BM25 matches on (empty: the query has no lexical content)."""
        if not isinstance(query, str):
            raise ValueError(f"a lexical query must be a string; got {type(query).__name__}")
        return self.analyzer(query)

    def _scores(self, words: list[str]) -> np.ndarray:
        """BM25 score of the query terms ``words`` for every document key (0 for dead documents and non-matches)."""
        scores = np.zeros(len(self._ids), dtype=np.float64)
        n = len(self._keys)
        if not n:
            return scores
        avgdl = self._total_length / n
        counts: dict[int, int] = {}
        for w in words:
            if w in self._vocab:
                counts[self._vocab[w]] = counts.get(self._vocab[w], 0) + 1
        all_live = n == len(self._ids)  # no deleted document: no posting to mask out
        for term, times in counts.items():
            found = [s.postings(term) for s in self._segments]
            docs, tfs = found[0] if len(found) == 1 else (np.concatenate([d for d, _ in found]),
                                                          np.concatenate([t for _, t in found]))
            if not all_live:
                alive = self._live[docs]
                docs, tfs = docs[alive], tfs[alive]
            tfs = tfs.astype(np.float64)
            if not len(docs):
                continue
            df = len(docs)
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            norm = self.k1 * (1.0 - self.b + self.b * self._lengths[docs] / avgdl)
            scores[docs] += times * idf * tfs / (tfs + norm)
        return scores

    def query(self, query: str, k: int, allowed: Callable[[str], bool] | None = None,
              extra_ids: Sequence[str] = ()) -> LexicalMatches:
        """Everything one search needs from BM25 in one call (:class:`ragcun.index.protocol.LexicalMatches`).

        The up to ``k`` ids with a positive score for ``query`` that pass ``allowed(id)``, best first
        (ties in insertion order), with their scores; the scores of ``extra_ids`` (0 where nothing
        matches or an id has no terms); whether ``query`` has any terms; and how many documents are indexed.
        """
        k = check_k(k)
        extra_ids = check_ids(extra_ids, "extra_ids")
        with self._lock:
            words, scores = self._query_scores(query)
            matched = np.flatnonzero(scores > 0)
            if allowed is None and len(matched) > k:
                matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
            order = matched[np.lexsort((matched, -scores[matched]))]  # score desc, then insertion order
            ids: list[str] = []
            for key in order.tolist():
                doc = self._ids[key]
                if doc is not None and (allowed is None or allowed(doc)):
                    ids.append(doc)
                    if len(ids) == k:
                        break
            return LexicalMatches(ids, self._scores_of(scores, ids), self._scores_of(scores, extra_ids), bool(words),
                                  len(self._keys))

    def search(self, query: str, k: int,
               allowed: Callable[[str], bool] | None = None) -> tuple[list[str], np.ndarray]:
        """Up to ``k`` ids with a positive BM25 score for ``query`` (and ``allowed(id)``), best first, with their scores."""
        found = self.query(query, k, allowed)
        return found.ids, found.scores

    def scores(self, query: str, ids: Sequence[str]) -> np.ndarray:
        """The BM25 score of ``query`` for each of ``ids`` (0 where nothing matches or an id has no terms)."""
        ids = check_ids(ids)
        with self._lock:
            return self._scores_of(self._query_scores(query)[1], ids)

    def _query_scores(self, query: str) -> tuple[list[str], np.ndarray]:
        """``query``'s terms and its score for every document key, queued texts indexed first (under the lock)."""
        words = self.query_terms(query)
        self._flush()
        return words, self._scores(words)

    def _scores_of(self, scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """The entries of ``scores`` (per document key) for ``ids``, 0 for an id without terms."""
        return np.array([scores[self._keys[i]] if i in self._keys else 0.0 for i in ids], dtype=np.float32)

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``lexical.json`` and ``postings.safetensors`` (bound to it by its SHA-256) into ``folder``
        (inside a caller's atomic save)."""
        with self._lock:
            self._flush()
            merged = _merge(self._segments, self._live) if self._segments else None
            keys = sorted(self._keys.values())
            remap = np.full(len(self._ids), -1, dtype=np.int64)
            remap[keys] = np.arange(len(keys))
            folder.mkdir(parents=True, exist_ok=True)
            meta = json.dumps({"analyzer": self.analyzer.to_dict(), "k1": self.k1, "b": self.b,
                               "vocab": list(self._vocab), "ids": [self._ids[k] for k in keys]}).encode("utf-8")
            (folder / self.META).write_bytes(meta)
            save_file({"terms": merged.terms if merged else np.zeros(0, np.int64),
                       "starts": merged.starts if merged else np.zeros(1, np.int64),
                       "docs": remap[merged.docs] if merged else np.zeros(0, np.int64),
                       "tfs": merged.tfs if merged else np.zeros(0, np.float32),
                       "lengths": self._lengths[keys]}, str(folder / self.POSTINGS),
                      metadata={self.BOUND_TO: hashlib.sha256(meta).hexdigest()})

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read what :meth:`save` wrote (the caller has verified the files' checksums); ``ValueError`` if
        ``postings.safetensors`` was written with another ``lexical.json`` (files of two saves mixed)."""
        raw = (folder / cls.META).read_bytes()
        postings = folder / cls.POSTINGS
        with safe_open(str(postings), framework="numpy") as fh:
            bound = (fh.metadata() or {}).get(cls.BOUND_TO)
        if bound is not None and bound != hashlib.sha256(raw).hexdigest():  # None: saved before the binding
            raise ValueError(f"{postings}: written with another {cls.META} than the one beside it "
                             "(files of two saves mixed)")
        meta = json.loads(raw.decode("utf-8"))
        arrays = load_file(str(postings))
        index = cls(Analyzer(**meta["analyzer"]), k1=meta["k1"], b=meta["b"])
        ids, lengths = meta["ids"], arrays["lengths"]
        if len(ids) != len(lengths) or len(arrays["starts"]) != len(arrays["terms"]) + 1:
            raise ValueError(f"{folder}: lexical index arrays do not match its {len(ids)} ids")
        index._vocab = {w: i for i, w in enumerate(meta["vocab"])}
        index._ids = list(ids)
        index._keys = {i: k for k, i in enumerate(ids)}
        index._lengths, index._live = lengths.astype(np.float32), np.ones(len(ids), dtype=bool)
        index._total_length = float(lengths.sum())
        if len(arrays["docs"]):
            index._segments = [_Segment(arrays["terms"], arrays["starts"], arrays["docs"], arrays["tfs"])]
        return index
