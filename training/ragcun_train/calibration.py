"""The trained model's relevance calibrator: labelled queries held back from training, then ``P(relevant)`` fitted on them.

With labelled data (``pairs``, ``beir``) a tenth of the distinct queries (at least
:data:`MIN_HELD`, at most :data:`MAX_HELD`; only when there are :data:`MIN_QUERIES` or more) never
reach training. After training, each held-back query retrieves its top :data:`DEPTH` documents of
the training corpus by exact L2 in the trained model's space, labelled relevant when they are among its
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

from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.pairs import DEPTH, calibration_pairs
from ragcun_train.data import TrainingSet

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.1
MIN_QUERIES = 100
MIN_HELD = 20
MAX_HELD = 500


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


def held_out_calibrator(queries: np.ndarray, corpus: np.ndarray, held: HeldOut, source: str) -> RelevanceCalibrator | None:
    """Fit on the held-back ``queries``' (their outputs, in :attr:`HeldOut.queries` order) top :data:`DEPTH` hits in
    ``corpus``'s outputs; ``None`` (logged) when those hits cannot be calibrated (e.g. no relevant document among them)."""
    distances, labels = calibration_pairs(queries, corpus, held.relevant, DEPTH)
    try:
        return RelevanceCalibrator.fit(distances, labels,
                                       fitted_on=f"{Path(source).name}: top-{DEPTH} hits of {len(held.queries)} held-back queries")
    except ValueError as exc:
        log.warning("no relevance calibrator: %s", exc)
        return None
