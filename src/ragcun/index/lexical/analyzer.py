"""``Analyzer``: text to BM25 index terms (lower-case words, stop words removed, Snowball stems), as ``bm25s.tokenize``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import Stemmer
from bm25s import stopwords as bm25s_stopwords

_WORD = re.compile(r"(?u)\b\w\w+\b")

_LISTS = {
    ("english", "en"): bm25s_stopwords.STOPWORDS_EN,
    ("english_plus", "en_plus"): bm25s_stopwords.STOPWORDS_EN_PLUS,
    ("german", "de"): bm25s_stopwords.STOPWORDS_GERMAN,
    ("dutch", "nl"): bm25s_stopwords.STOPWORDS_DUTCH,
    ("french", "fr"): bm25s_stopwords.STOPWORDS_FRENCH,
    ("spanish", "es"): bm25s_stopwords.STOPWORDS_SPANISH,
    ("portuguese", "pt"): bm25s_stopwords.STOPWORDS_PORTUGUESE,
    ("italian", "it"): bm25s_stopwords.STOPWORDS_ITALIAN,
    ("russian", "ru"): bm25s_stopwords.STOPWORDS_RUSSIAN,
    ("swedish", "sv"): bm25s_stopwords.STOPWORDS_SWEDISH,
    ("norwegian", "no"): bm25s_stopwords.STOPWORDS_NORWEGIAN,
    ("chinese", "zh"): bm25s_stopwords.STOPWORDS_CHINESE,
    ("turkish", "tr"): bm25s_stopwords.STOPWORDS_TURKISH,
    ("korean", "ko"): bm25s_stopwords.STOPWORDS_KOREAN,
    ("danish", "da"): bm25s_stopwords.STOPWORDS_DANISH,
}
STOPWORD_LISTS: dict[str, tuple[str, ...]] = {name: words for names, words in _LISTS.items() for name in names}
"""The stop word lists ``bm25s`` ships (:mod:`bm25s.stopwords`), by the language names and codes ``bm25s.tokenize`` takes."""


def stopword_list(stopwords: str | Iterable[str] | None) -> tuple[str, ...]:
    """The stop words ``stopwords`` names: a key of :data:`STOPWORD_LISTS`, a list of words, or ``None`` for none."""
    if stopwords is None:
        return ()
    if isinstance(stopwords, str):
        if stopwords not in STOPWORD_LISTS:
            raise ValueError(f"unknown stop word list {stopwords!r}; choose one of {sorted(STOPWORD_LISTS)}, "
                             "a list of words or None")
        return STOPWORD_LISTS[stopwords]
    words = tuple(stopwords) if isinstance(stopwords, Iterable) else None
    if words is None or not all(isinstance(w, str) for w in words):
        raise ValueError(f"stopwords must be a language name or code, a list of words or None; got {stopwords!r}")
    return words


class Analyzer:
    """Text -> index terms: lower-case, ``\\w\\w+`` words, stop words removed, then stemmed.

    ``language`` names the Snowball stemmer (``Stemmer.algorithms()``; ``None``: no stemming);
    ``stopwords`` is a language name or code of ``bm25s``' lists (``"en"``, ``"de"``, ...:
    :data:`STOPWORD_LISTS`), a list of words, or ``None`` for none. Defaults: English stemmer and stop words.
    """

    def __init__(self, language: str | None = "english", stopwords: str | Sequence[str] | None = "en") -> None:
        if language is not None and language not in Stemmer.algorithms():
            raise ValueError(f"no stemmer for language {language!r}; choose one of {Stemmer.algorithms()} or None")
        words = stopword_list(stopwords)
        self.language = language
        self.stopwords = stopwords if isinstance(stopwords, str) or stopwords is None else sorted(set(stopwords))
        self._stop = frozenset(words)
        self._stemmer = Stemmer.Stemmer(language) if language is not None else None
        self._terms: dict[str, str | None] = {}  # word -> term (None: a stop word)
        self._lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        """The lower-cased ``\\w\\w+`` words of ``text``, before stop words and stemming."""
        return _WORD.findall(text.lower())

    def terms(self, words: Sequence[str]) -> list[str | None]:
        """The term of each word: its stem, or ``None`` for a stop word (cached per distinct word)."""
        new = [w for w in dict.fromkeys(words) if w not in self._terms]
        if new:
            kept = [w for w in new if w not in self._stop]
            stems = self._stemmer.stemWords(kept) if self._stemmer is not None else kept
            with self._lock:
                self._terms.update(dict.fromkeys(new))
                self._terms.update(zip(kept, stems))
        return [self._terms[w] for w in words]

    def __call__(self, text: str) -> list[str]:
        """The index terms of ``text``, in order, repeats kept."""
        return [t for t in self.terms(self.words(text)) if t is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {"language": self.language, "stopwords": self.stopwords}
