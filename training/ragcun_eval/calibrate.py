"""Relevance calibration on a labelled split: the (distance, relevant) pairs of each query's top hits, and the fit.

``ragcun-eval calibrate DATA --split train --model M --output FOLDER`` fits a
:class:`ragcun.scoring.calibrator.RelevanceCalibrator` on split ``train`` and writes it into ``FOLDER``
(a model folder, where ``GaussianEncoder`` finds it); ``ragcun-eval claims`` measures it (ECE) on
another split. Pairs are each query's top ``depth`` (10) retrieved documents by L2 in the model's
own space, labelled by the qrels: the hits a store would score.
"""

from __future__ import annotations

import numpy as np

from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.pairs import DEPTH, hit_pairs
from ragcun_eval.beir import BeirDataset
from ragcun_eval.retrieval import ModelRun


def calibration_pairs(run: ModelRun, data: BeirDataset, depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """Distances and relevance labels (qrels score > 0) of every query's top ``depth`` hits in ``run``."""
    relevant = [{d for d, s in data.qrels[q].items() if s > 0} for q in run.query_ids]
    return hit_pairs([run.distances[q] for q in run.query_ids], [run.ranked[q] for q in run.query_ids], relevant, depth)


def fit_calibrator(run: ModelRun, data: BeirDataset, split: str, depth: int = DEPTH) -> RelevanceCalibrator:
    """A calibrator fitted on ``run``'s top-``depth`` hits of ``data`` (qrels ``split``); the run must rank by
    L2 in the model's raw space."""
    if run.spec.geometry != "l2":
        raise ValueError(f"calibrate a model in its own L2 space (geometry 'l2'), not {run.spec.geometry!r}: "
                         "the stores score raw L2 distances")
    distances, labels = calibration_pairs(run, data, depth)
    return RelevanceCalibrator.fit(distances, labels, fitted_on=f"{data.name} {split}: top-{depth} hits of {len(run.query_ids)} queries")
