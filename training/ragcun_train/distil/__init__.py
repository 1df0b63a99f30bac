"""``--objective distil``: label-free distillation of the hybrid ranking into the encoder (GPL-style), as one unit.

From an unlabelled corpus (:func:`load_distil`): pseudo-queries cut from its documents
(:mod:`ragcun_train.distil.pseudo_queries`), the hybrid L2 + BM25 teacher over the same corpus
(:mod:`ragcun_train.distil.teacher`) ranking each query's candidates, and one (query, positive,
hard negative, teacher margin) row per pseudo-query (:mod:`ragcun_train.distil.triplets`), learnt
with MarginMSE (:class:`ragcun.losses.EuclideanMarginMSELoss`) plus SIGReg. The source document
of a pseudo-query is skipped when mining (it contains the query verbatim): the positive is the
teacher's best *other* document (``positives="teacher"``, the default), or the source with the
query cut out (inverse cloze, ``"ict"``, scored as the source), or one row of each (``"both"``);
docs/benchmarks.md compares them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ragcun_train.calibration import HeldOut
from ragcun_train.config import TrainConfig
from ragcun_train.data import TrainingSet, document_texts, load_documents
from ragcun_train.distil.pseudo_queries import PseudoQuery, pseudo_queries, split_sentences
from ragcun_train.distil.teacher import HybridTeacher, TeacherRanking
from ragcun_train.distil.triplets import POSITIVES, Triplet, distil_set, fit_margin_scale, mine_triplets
from ragcun_train.rows import Embed

log = logging.getLogger(__name__)

__all__ = ["POSITIVES", "DistilData", "HybridTeacher", "PseudoQuery", "TeacherRanking", "Triplet", "distil_set",
           "fit_margin_scale", "load_distil", "mine_triplets", "pseudo_queries", "split_sentences"]


@dataclass(frozen=True)
class DistilData:
    """A corpus to distil on: its ``titles`` and ``bodies``; ``loaded`` holds its documents (``title body``) to cache.
    Nothing is held back (a corpus has no labelled queries to calibrate on)."""

    titles: list[str]
    bodies: list[str]
    loaded: TrainingSet
    seed: int
    held: HeldOut | None = None

    def rows(self, embed: Embed) -> TrainingSet:
        """The (pseudo-query, positive, hard negative, teacher margin) rows, from the model's embeddings ``embed``."""
        rows = distil_set(self.titles, self.bodies, embed, source=self.loaded.source, seed=self.seed)
        log.info("distil: %d (pseudo-query, positive, hard negative, teacher margin) rows", len(rows))
        return rows


def load_distil(data_path: Path, cfg: TrainConfig) -> DistilData:
    """The documents of the corpus at ``data_path``; ``ValueError`` when it has none."""
    titles, bodies, skipped = load_documents(data_path)
    if not titles:
        raise ValueError(f"{data_path}: no documents to distil on (skipped: {dict(skipped) or 'none'})")
    texts = document_texts(titles, bodies)
    return DistilData(titles, bodies, TrainingSet("corpus", str(data_path), [], [], None, texts, [], skipped), cfg.seed)
