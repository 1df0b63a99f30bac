"""Pseudo-queries cut from a corpus, with no language model: sentences, titles and short spans.

Each pseudo-query remembers the document it came from and, for the inverse-cloze task (Lee et al.,
ACL 2019), that document with the span removed (``rest``): a positive that does not contain the
query's words, so learning it is not lexical copy. Queries are deduplicated (case and spacing
ignored) across the whole corpus, several per document.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("sentence", "title", "span")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class PseudoQuery:
    """A query cut from document ``doc`` (a corpus row): its ``text``, ``kind`` and the document without it (``rest``)."""

    text: str
    doc: int
    kind: str
    rest: str


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ``.``, ``!`` or ``?`` followed by white space), stripped, non-empty."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def pseudo_queries(
    texts: Sequence[str],
    titles: Sequence[str | None] | None = None,
    *,
    per_doc: int = 2,
    kinds: Sequence[str] = ("sentence", "title"),
    min_words: int = 5,
    max_words: int = 40,
    span_words: int = 12,
    min_rest_words: int = 8,
    max_queries: int | None = None,
    seed: int = 0,
) -> list[PseudoQuery]:
    """Up to ``per_doc`` distinct pseudo-queries per document of ``texts``, drawn with ``seed``.

    ``texts[i]`` is document ``i``'s body and ``titles[i]`` its title (``None`` or empty: none).
    ``kinds`` picks the sources: ``"sentence"`` (a sentence of ``min_words`` to ``max_words``
    words), ``"title"`` (the title, when it has ``min_words`` or more words) and ``"span"``
    (``span_words`` consecutive words). A candidate whose document would keep fewer than
    ``min_rest_words`` words without it is skipped. With ``max_queries``, documents are visited in
    a seeded random order until that many queries exist.

    Raises ``ValueError`` on bad arguments (a non-string text, an unknown kind, ``per_doc < 1``,
    ``min_words > max_words``) and when the corpus yields no pseudo-query at all.
    """
    if isinstance(texts, str):
        raise ValueError("pseudo_queries: texts must be a sequence of documents, not one string")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"pseudo_queries: document {bad[0]} is a {type(texts[bad[0]]).__name__}, not a string")
    if titles is not None:
        if len(titles) != len(texts):
            raise ValueError(f"pseudo_queries: {len(titles)} titles for {len(texts)} documents")
        bad = [i for i, t in enumerate(titles) if t is not None and not isinstance(t, str)]
        if bad:
            raise ValueError(f"pseudo_queries: title {bad[0]} is a {type(titles[bad[0]]).__name__}, not a string or None")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"pseudo_queries: kinds must be a non-empty subset of {KINDS}, got {list(kinds)!r}")
    for name, value, low in (("per_doc", per_doc, 1), ("min_words", min_words, 1), ("max_words", max_words, 1),
                             ("span_words", span_words, 1), ("min_rest_words", min_rest_words, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"pseudo_queries: {name} must be an integer >= {low}, got {value!r}")
    if min_words > max_words:
        raise ValueError(f"pseudo_queries: min_words {min_words} > max_words {max_words}")
    if max_queries is not None and (isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1):
        raise ValueError(f"pseudo_queries: max_queries must be an integer >= 1 or None, got {max_queries!r}")

    rng = random.Random(seed)
    order = list(range(len(texts)))
    if max_queries is not None:
        rng.shuffle(order)
    seen: set[str] = set()
    out: list[PseudoQuery] = []
    for i in order:
        body = texts[i].strip()
        title = (titles[i] or "").strip() if titles is not None else ""
        options: list[tuple[str, str, str]] = []  # (query, kind, rest)
        sentences = split_sentences(body)
        if "title" in kinds and title and len(title.split()) >= min_words:
            options.append((title, "title", body))
        if "sentence" in kinds:
            for j, s in enumerate(sentences):
                if min_words <= len(s.split()) <= max_words:
                    options.append((s, "sentence", " ".join([title, *sentences[:j], *sentences[j + 1:]]).strip()))
        if "span" in kinds:
            words = body.split()
            if len(words) > span_words:
                start = rng.randrange(len(words) - span_words + 1)
                span = " ".join(words[start:start + span_words])
                options.append((span, "span", " ".join([title, *words[:start], *words[start + span_words:]]).strip()))
        rng.shuffle(options)
        taken = 0
        for text, kind, rest in options:
            key = _key(text)
            if key in seen or len(rest.split()) < min_rest_words:
                continue
            seen.add(key)
            out.append(PseudoQuery(text=text, doc=i, kind=kind, rest=rest))
            taken += 1
            if taken == per_doc:
                break
        if max_queries is not None and len(out) >= max_queries:
            break
    if not out:
        raise ValueError(f"pseudo_queries: no pseudo-query could be cut from {len(texts)} documents "
                         f"(kinds {list(kinds)}, {min_words}-{max_words} words, at least {min_rest_words} words left)")
    return out[:max_queries] if max_queries is not None else out
