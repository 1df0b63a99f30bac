"""The label-free teacher of ``--objective distil``: the hybrid (L2 + BM25) ranking over the training corpus.

For each (pseudo-)query the teacher takes the union of the dense side's top ``candidates``
(exact Euclidean ranking of the base model's embeddings, :func:`ragcun.index.exact.nearest`) and BM25's top ``candidates``
(:class:`ragcun.index.lexical.bm25.BM25Index`), and scores every candidate with the stores' default fusion
(:class:`ragcun.store.fusion.HybridFusion`: fixed floors, dense weight ``alpha``): the same
ranking the stores' ``retrieval_mode="hybrid"`` serves (its nDCG@10 against dense: docs/benchmarks.md).
It needs no labels, so it exists on every corpus: it stands in for GPL's cross-encoder
(Wang et al., NAACL 2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragcun.index.exact import nearest, squared_distances
from ragcun.index.lexical.bm25 import BM25Index
from ragcun.store.fusion import (
    CONVEX,
    DEFAULT_ALPHA,
    DEFAULT_CANDIDATES,
    DEFAULT_NORMALIZATION,
    HybridFusion,
    check_alpha,
)


@dataclass(frozen=True)
class TeacherRanking:
    """One query's teacher ranking: corpus rows ``docs`` (best first) and their fused ``scores`` in [0, 1]."""

    docs: np.ndarray
    scores: np.ndarray


class HybridTeacher:
    """Ranks corpus rows for query texts and vectors by fused L2 + BM25 scores.

    Args:
        texts: the corpus texts (BM25 indexes them).
        vectors: (N, D) embeddings of ``texts`` by the base model (the dense side, ranked by L2).
        alpha: the dense weight of the fusion (default :data:`ragcun.store.fusion.DEFAULT_ALPHA`).
        candidates: documents taken from each side before fusing (default 100).
    """

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                 candidates: int = DEFAULT_CANDIDATES) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"HybridTeacher: need one vector per text; got {len(texts)} texts and vectors of shape {vectors.shape}")
        if not len(texts):
            raise ValueError("HybridTeacher: the corpus is empty")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"HybridTeacher: candidates must be an integer >= 1, got {candidates!r}")
        self.alpha = check_alpha(alpha)
        self.fusion = HybridFusion(CONVEX, DEFAULT_NORMALIZATION, self.alpha)
        self.candidates = min(candidates, len(texts))
        self.vectors = vectors
        self.bm25 = BM25Index()
        self.bm25.add([str(i) for i in range(len(texts))], list(texts))

    def __len__(self) -> int:
        return len(self.vectors)

    def distances(self, query_vectors: np.ndarray) -> np.ndarray:
        """(Q, N) Euclidean distances of ``query_vectors`` to every corpus row."""
        return np.sqrt(squared_distances(query_vectors, self.vectors))

    def rank(self, query_texts: Sequence[str], query_vectors: np.ndarray, k: int | None = None,
             batch: int = 256) -> list[TeacherRanking]:
        """Each query's fused ranking of its candidates (the top ``k``; all of them by default)."""
        query_vectors = np.asarray(query_vectors)
        if len(query_texts) != len(query_vectors):
            raise ValueError(f"HybridTeacher.rank: {len(query_texts)} query texts but {len(query_vectors)} vectors")
        out: list[TeacherRanking] = []
        c = self.candidates
        for start in range(0, len(query_texts), batch):
            block = query_vectors[start:start + batch]
            dense_top, _ = nearest(block, self.vectors, c)
            for row, text in enumerate(query_texts[start:start + batch]):
                dense_ids = [str(i) for i in dense_top[row].tolist()]
                found = self.bm25.query(text, c, extra_ids=dense_ids)  # one BM25 call, as DocStore makes
                bm25 = {**dict(zip(dense_ids, found.extra_scores.tolist())), **dict(zip(found.ids, found.scores.tolist()))}
                cand = np.union1d(dense_top[row], np.asarray(found.ids, dtype=np.int64))
                lex = np.array([bm25[str(i)] for i in cand.tolist()])
                dist = np.sqrt(squared_distances(block[row:row + 1], self.vectors[cand])[0])
                fused = self.fusion.scores(dist, lex, float(block[row] @ block[row]))
                order = np.lexsort((cand, -fused))[: k or None]
                out.append(TeacherRanking(docs=cand[order], scores=fused[order]))
        return out
