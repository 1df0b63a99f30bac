"""A ≥ 100,000-passage real-text corpus from ``../shared/data``, built reproducibly (no randomness).

The corpus of ``benchmarks.ann --real``, ``benchmarks.hybrid``, ``benchmarks.memory`` and ``benchmarks.search``.

What a RAG chunker would produce from the text there, with every SciFact document kept whole so that
SciFact test queries keep their qrels among the other ~95k+ passages as distractors:

- ``scifact``: every SciFact document (``title text``), whole, id = its BEIR id;
- ``scifact-title``: each SciFact title alone (the header chunk a Markdown-aware chunker emits),
  ids ``sf:<doc>:title``;
- ``scifact-w1``: every sentence of each SciFact abstract (sentence windows of ``WINDOWS`` sizes,
  stride 1), ids ``sf:<doc>:<size>:<start>``;
- ``wiki-w1``: the same windows over the distinct NQ/SQuAD Wikipedia passages of
  ``train/qed_nq_xquad_en/pairs.jsonl``, ids ``wk:<passage#>:<size>:<start>``;
- ``nq-queries``: the NQ/SQuAD question texts (short, query-like passages), ids ``q:<row#>``.

Windows and titles shorter than ``MIN_CHARS`` are dropped and a text already taken (an exact duplicate) is kept once
(first source in the order above wins). SciFact *queries* are never in the corpus.

Encoded once through the shared embedding cache (:func:`embed`, chunked so an interrupted encode keeps what it finished).

Run from the repository root: python -m benchmarks.real_corpus [--encode]   (prints the counts per source, the total and the
distinct count; ``--encode`` fills the embedding cache for the bundled model)
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass

import numpy as np

from benchmarks.common import NQ_PAIRS, SCIFACT, SHARED, print_table

MIN_CHARS = 30
WINDOWS = (1,)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Corpus:
    """Parallel lists of passage ``ids``, ``texts`` and ``sources`` (the source tag of each passage)."""

    ids: list[str]
    texts: list[str]
    sources: list[str]

    def counts(self) -> dict[str, int]:
        """Passages per source tag, in first-seen order."""
        out: dict[str, int] = {}
        for s in self.sources:
            out[s] = out.get(s, 0) + 1
        return out


def available() -> bool:
    """Whether the shared data the corpus is cut from is present."""
    return (SCIFACT / "corpus.jsonl").is_file() and NQ_PAIRS.is_file()


def windows(text: str, size: int) -> list[tuple[int, str]]:
    """(start, text) of every ``size``-sentence sliding window of ``text`` (stride 1)."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    return [(i, " ".join(sentences[i:i + size])) for i in range(max(len(sentences) - size + 1, 0))]


def build() -> Corpus:
    """The corpus described in the module docstring (deterministic: same data, same corpus)."""
    ids: list[str] = []
    texts: list[str] = []
    sources: list[str] = []
    seen: set[str] = set()

    def take(pid: str, text: str, source: str, whole: bool = False) -> None:
        text = text.strip()
        if (whole and text) or (len(text) >= MIN_CHARS and text not in seen):
            seen.add(text)
            ids.append(pid)
            texts.append(text)
            sources.append(source)

    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    with NQ_PAIRS.open(encoding="utf-8") as fh:
        pairs = [json.loads(line) for line in fh]
    wiki = list(dict.fromkeys(p["positive"] for p in pairs))
    for d in docs:
        take(str(d["_id"]), f"{d.get('title', '')} {d['text']}", "scifact", whole=True)
    for d in docs:
        take(f"sf:{d['_id']}:title", d.get("title", ""), "scifact-title")
    for size in WINDOWS:
        for d in docs:
            for start, w in windows(d["text"], size):
                take(f"sf:{d['_id']}:{size}:{start}", w, f"scifact-w{size}")
    for size in WINDOWS:
        for n, passage in enumerate(wiki):
            for start, w in windows(passage, size):
                take(f"wk:{n}:{size}:{start}", w, f"wiki-w{size}")
    for n, p in enumerate(pairs):
        take(f"q:{n}", p["query"], "nq-queries")
    return Corpus(ids, texts, sources)


def embed(texts: list[str], role: str = "document", chunk: int = 8192) -> np.ndarray:
    """Bundled-model base outputs (N, 384) float32 of ``texts`` through the embedding cache, ``chunk`` at a time."""
    from tqdm import tqdm

    from ragcun import EmbeddingCache, GaussianEncoder

    cache = EmbeddingCache(GaussianEncoder(), show_progress=False)
    missing = len(cache.missing(texts, role))
    parts = []
    with tqdm(total=len(texts), desc=f"embedding ({missing:,} not cached)", unit="text") as bar:
        for s in range(0, len(texts), chunk):
            parts.append(np.asarray(cache.get(texts[s:s + chunk], role), dtype=np.float32))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)


def main() -> None:
    """Print the counts per source, the total and the distinct count; ``--encode`` fills the cache."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encode", action="store_true", help="encode the corpus into the embedding cache")
    args = parser.parse_args()
    if not available():
        raise SystemExit(f"shared data not found under {SHARED}")
    corpus = build()
    print_table([{"source": s, "passages": c} for s, c in corpus.counts().items()]
                + [{"source": "total", "passages": len(corpus.texts)}])
    print(f"distinct texts {len(set(corpus.texts)):,}   "
          f"distinct ids {len(set(corpus.ids)):,}")
    if args.encode:
        embed(corpus.texts)


if __name__ == "__main__":
    main()
