"""The trained model's relevance calibrator: labelled queries held back from training, then ``P(relevant)`` fitted on them.

With labelled data (``pairs``, ``beir``) a tenth of the distinct queries (at least
:data:`MIN_HELD`, at most :data:`MAX_HELD`; only when there are :data:`MIN_QUERIES` or more) never
reach training. After training, each held-back query retrieves its top :data:`DEPTH` documents of
the training corpus by L2 in the trained model's space, labelled relevant when they are among its
positives, and :class:`ragcun.scoring.calibrator.RelevanceCalibrator` is fitted on those hits: the hits a
store would score, from queries the model never saw. A label-free corpus gets no calibrator (its
only labels are the views cut from each document, far easier than real queries); the stores then
use the distance law of :mod:`ragcun.scoring.distance_law`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun_train.data import TrainingSet

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.1
MIN_QUERIES = 100
MIN_HELD = 20
MAX_HELD = 500
DEPTH = 10


@dataclass
class HeldOut:
    """Queries kept out of training and the corpus rows relevant to each."""

    queries: list[str]
    relevant: list[set[int]]


def hold_out(train_set: TrainingSet, seed: int) -> tuple[TrainingSet, HeldOut | None]:
    """``train_set`` without the held-back queries' rows, and those queries; unchanged and ``None`` when it has too few
    labelled queries (or none: a label-free corpus)."""
    distinct = list(dict.fromkeys(train_set.anchors))
    if train_set.kind == "corpus" or len(distinct) < MIN_QUERIES:
        return train_set, None
    n = min(MAX_HELD, max(MIN_HELD, round(HOLDOUT_FRACTION * len(distinct))))
    held = set(random.Random(seed).sample(distinct, n))
    keep = [i for i, a in enumerate(train_set.anchors) if a not in held]
    relevant: dict[str, set[int]] = {}
    for anchor, pid in zip(train_set.anchors, train_set.positive_ids):
        if anchor in held:
            relevant.setdefault(anchor, set()).add(pid)
    negatives = None if train_set.negatives is None else [train_set.negatives[i] for i in keep]
    kept = replace(train_set, anchors=[train_set.anchors[i] for i in keep],
                   positives=[train_set.positives[i] for i in keep], negatives=negatives,
                   positive_ids=[train_set.positive_ids[i] for i in keep])
    return kept, HeldOut(list(relevant), list(relevant.values()))


def fit_calibrator(queries: np.ndarray, corpus: np.ndarray, held: HeldOut, source: str) -> RelevanceCalibrator | None:
    """Fit on the held-back ``queries``' (their outputs, in :attr:`HeldOut.queries` order) top hits in ``corpus``'s
    outputs; ``None`` (logged) when those hits cannot be calibrated (e.g. no relevant document among them)."""
    index = L2Index(corpus.shape[1])
    index.add([str(i) for i in range(len(corpus))], corpus)
    ids, distances = index.search(queries, min(DEPTH, len(corpus)))
    labels = np.array([[i is not None and int(i) in rel for i in row] for row, rel in zip(ids, held.relevant)])
    try:
        return RelevanceCalibrator.fit(distances[np.isfinite(distances)], labels[np.isfinite(distances)],
                                       fitted_on=f"{Path(source).name}: top-{DEPTH} hits of {len(held.queries)} held-back queries")
    except ValueError as exc:
        log.warning("no relevance calibrator: %s", exc)
        return None
