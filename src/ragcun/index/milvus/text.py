"""The text side of ``MilvusL2Index``: how texts are analysed for Milvus's BM25 and checked before storing.

By default ragcun analyses texts itself, with the analyzer of its own BM25 index
(:class:`ragcun.index.lexical.bm25.Analyzer`: tokens of two or more word characters, lowercased, Lucene's
English stopwords dropped, Snowball English stems, as ``bm25s`` does), and stores the space-separated stems in an analysed ``VARCHAR``
field named ``stems``; Milvus's BM25 function then only splits them. Milvus Lite's analyzers have no stemmer
(standard and jieba tokenizers with stop words only), so this keeps lexical results the same on
Milvus Lite and on a server, and the same as ragcun's own BM25 index. With explicit
``analyzer_params`` the raw text is stored in a field named ``text`` and Milvus analyses it (e.g.
``{"type": "english"}`` on a server). The field's name records the choice in the collection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ragcun.index.lexical.analyzer import Analyzer

MAX_TEXT_BYTES = 65_535
"""Milvus's largest VARCHAR: the longest stored text (after analysis) in UTF-8 bytes, and the longest id."""
STEMS_FIELD = "stems"
"""The text field holding ragcun's English stems of each text (queries are stemmed alike)."""
TEXT_FIELD = "text"
"""The text field holding raw texts, analysed by Milvus with the field's ``analyzer_params``."""
SPLIT_STEMS: dict[str, Any] = {"tokenizer": "standard"}
"""The Milvus analyzer for stored stems: split them, nothing more (available on Milvus Lite too)."""
ENGLISH = Analyzer()
"""The analysis of texts and queries stored in the ``stems`` field."""


def english_terms(text: str) -> list[str]:
    """The BM25 terms of ``text`` under :data:`ENGLISH`."""
    return ENGLISH(text)


def stored_texts(ids: Sequence[str], texts: Sequence[str | None], english: bool, where: str) -> list[str]:
    """What to store in the text field for each id (``""`` for no text); ``ValueError`` naming the id for bad texts."""
    for i, text in zip(ids, texts):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{where}: text of id {i!r} must be a string or None; got {type(text).__name__}")
    values = [text or "" for text in texts]
    if english:
        values = [" ".join(ENGLISH(v)) for v in values]
    for i, value in zip(ids, values):
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"{where}: text of id {i!r} is not valid Unicode ({exc.reason})") from None
        if size > MAX_TEXT_BYTES:
            what = "analyses to" if english else "is"
            raise ValueError(f"{where}: text of id {i!r} {what} {size} UTF-8 bytes; Milvus stores at most "
                             f"{MAX_TEXT_BYTES} per text: split the document into smaller chunks")
    return values


def analysis_mode(analyzer_params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``(text field name, Milvus analyzer_params)`` for a new collection."""
    if analyzer_params is None:
        return STEMS_FIELD, dict(SPLIT_STEMS)
    if not isinstance(analyzer_params, Mapping):
        raise ValueError(f"analyzer_params must be a mapping (Milvus analyzer settings) or None; got {analyzer_params!r}")
    return TEXT_FIELD, dict(analyzer_params)
