"""The rows ``--objective distil`` trains on: triplets mined from the teacher's rankings, with scaled teacher margins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ragcun_train.data import TrainingSet
from ragcun_train.distil.pseudo_queries import PseudoQuery, pseudo_queries
from ragcun_train.distil.teacher import HybridTeacher, TeacherRanking

POSITIVES = ("ict", "teacher", "both")
MAX_QUERIES = 3000
TEACHER_DEPTH = 30
NEGATIVES_FROM = 2


@dataclass(frozen=True)
class Triplet:
    """Row of a distillation set: pseudo-query ``query``, its positive (corpus row ``positive``, or
    ``None`` for the query's inverse-cloze rest), corpus row ``negative`` and the teacher's ``margin``."""

    query: int
    positive: int | None
    negative: int
    margin: float


def mine_triplets(queries: Sequence[PseudoQuery], ranks: Sequence[TeacherRanking], *, positives: str = "ict",
                  negatives_from: int = NEGATIVES_FROM, seed: int = 0) -> list[Triplet]:
    """One or two triplets per pseudo-query from its teacher ranking, its source document skipped.

    The negative is drawn uniformly from the ranking's places ``negatives_from`` and below (the
    source removed); the positive is the query's inverse-cloze rest (``"ict"``: the teacher's
    score of the source document is its score), the teacher's best other document
    (``"teacher"``), or one triplet of each (``"both"``).
    """
    if positives not in POSITIVES:
        raise ValueError(f"positives must be one of {POSITIVES}, got {positives!r}")
    if len(queries) != len(ranks):
        raise ValueError(f"{len(queries)} pseudo-queries but {len(ranks)} teacher rankings")
    rng = np.random.default_rng(seed)
    out: list[Triplet] = []
    for i, (q, r) in enumerate(zip(queries, ranks)):
        source = r.docs == q.doc
        docs, scores = r.docs[~source], r.scores[~source]
        if len(docs) <= negatives_from:
            continue
        source_score = float(r.scores[source][0]) if source.any() else float(r.scores[0])
        j = int(rng.integers(negatives_from, len(docs)))
        if positives in ("teacher", "both"):
            out.append(Triplet(i, int(docs[0]), int(docs[j]), float(scores[0] - scores[j])))
        if positives in ("ict", "both"):
            out.append(Triplet(i, None, int(docs[j]), source_score - float(scores[j])))
    return out


def fit_margin_scale(teacher: np.ndarray, student: np.ndarray) -> float:
    """The factor c > 0 that best maps teacher margins onto the student's own (least squares: c = Σ t·s / Σ t²).

    The hybrid teacher's fused margins span [0, 1] while a cosine student's rarely exceed a few
    tenths: learnt unscaled, MarginMSE stretches the student's geometry (docs/benchmarks.md).
    Returns 1.0 when no positive fit exists (no margins, or margins of opposite sign overall).
    """
    t, s = np.asarray(teacher, dtype=np.float64), np.asarray(student, dtype=np.float64)
    if t.shape != s.shape:
        raise ValueError(f"fit_margin_scale: {t.shape} teacher margins but {s.shape} student margins")
    den = float((t * t).sum())
    c = float((t * s).sum()) / den if den > 0 else 0.0
    return c if np.isfinite(c) and c > 0 else 1.0


def distil_set(
    titles: Sequence[str],
    bodies: Sequence[str],
    embed: Callable[[list[str], str], np.ndarray],
    *,
    source: str = "",
    max_queries: int = MAX_QUERIES,
    positives: str = "teacher",
    depth: int = TEACHER_DEPTH,
    negatives_from: int = NEGATIVES_FROM,
    fit_scale: bool = True,
    seed: int = 0,
) -> TrainingSet:
    """The (anchor, positive, negative, label) rows ``--objective distil`` trains on.

    ``embed(texts, role)`` gives the model's embeddings before training (``role`` ``"query"`` or
    ``"document"``); documents (``title body``) are embedded as documents, pseudo-queries as
    queries. With BM25 they make the teacher. ``labels`` are the teacher's margins, times
    :func:`fit_margin_scale` of the model's own margins ``(‖q − n‖² − ‖q − p‖²) / (2D)`` (the
    scale :class:`ragcun.losses.EuclideanMarginMSELoss` scores with) when ``fit_scale``. The
    returned set's corpus is the documents.
    """
    if len(titles) != len(bodies):
        raise ValueError(f"{len(titles)} titles for {len(bodies)} documents")
    texts = [f"{t} {b}".strip() for t, b in zip(titles, bodies)]
    queries = pseudo_queries(list(bodies), list(titles), per_doc=1, max_queries=max_queries, seed=seed)
    doc_vectors = np.asarray(embed(texts, "document"), dtype=np.float32)
    query_vectors = np.asarray(embed([q.text for q in queries], "query"), dtype=np.float32)
    teacher = HybridTeacher(texts, doc_vectors)
    ranks = teacher.rank([q.text for q in queries], query_vectors, k=depth + 1)
    rows = mine_triplets(queries, ranks, positives=positives, negatives_from=negatives_from, seed=seed)
    if not rows:
        raise ValueError(f"{source or 'corpus'}: too few documents to mine hard negatives from ({len(texts)})")
    positive_texts = [queries[t.query].rest if t.positive is None else texts[t.positive] for t in rows]
    margins = np.array([t.margin for t in rows])
    if fit_scale:
        q = query_vectors[[t.query for t in rows]]
        p = np.asarray(embed(positive_texts, "document"), dtype=np.float32)
        n = doc_vectors[[t.negative for t in rows]]
        student = (((q - n) ** 2).sum(1) - ((q - p) ** 2).sum(1)) / (2 * q.shape[1])
        margins = margins * fit_margin_scale(margins, student)
    return TrainingSet(
        "distil", source,
        anchors=[queries[t.query].text for t in rows],
        positives=positive_texts,
        negatives=[texts[t.negative] for t in rows],
        corpus=texts,
        positive_ids=[queries[t.query].doc if t.positive is None else t.positive for t in rows],
        labels=margins.tolist(),
    )
