"""Calibration pairs (ragcun.scoring.pairs): each query's top hits by exact L2 with their distances, labelled by
relevance; and the same from a ranking made elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.pairs import DEPTH, calibration_pairs, hit_pairs


def test_pairs_are_the_top_hits_with_their_distances_and_labels():
    docs = np.array([[0.0, 0], [1.0, 0], [3.0, 0], [0, 2.0]])
    queries = np.array([[0.0, 0], [3.0, 0]])
    distances, labels = calibration_pairs(queries, docs, [{1}, {3}], depth=2)
    # query 0: rows 0 (d 0), 1 (d 1); query 1: rows 2 (d 0), 1 (d 2)
    np.testing.assert_allclose(distances, [0.0, 1.0, 0.0, 2.0])
    assert labels.tolist() == [False, True, False, False] and labels.dtype == bool
    d_all, l_all = calibration_pairs(queries, docs, [{1}, {3}], depth=10)  # depth beyond the corpus: every document
    assert len(d_all) == len(l_all) == 8 and l_all.sum() == 2


def test_pairs_from_another_ranking_keep_its_order_and_depth():
    distances, labels = hit_pairs([[0.5, 0.7, 0.9], [0.2]], [["a", "b", "c"], ["x"]], [{"c"}, {"x"}], depth=2)
    assert distances.tolist() == [0.5, 0.7, 0.2] and labels.tolist() == [False, False, True]
    assert hit_pairs([], [], [])[0].shape == (0,)
    with pytest.raises(ValueError, match="2 hits but 1 distances"):
        hit_pairs([[0.1]], [["a", "b"]], [set()])
    with pytest.raises(ValueError, match="1 distance rows, 2 hit rows"):
        hit_pairs([[0.1]], [["a"], ["b"]], [set()])
    with pytest.raises(ValueError, match="2 queries but 1 relevance sets"):
        calibration_pairs(np.zeros((2, 2)), np.zeros((3, 2)), [set()])


def test_a_calibrator_fits_on_the_pairs():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 8))
    queries = docs[:120] + rng.standard_normal((120, 8)) * rng.uniform(0.2, 1.2, (120, 1))
    distances, labels = calibration_pairs(queries, docs, [{i} for i in range(120)])
    assert len(distances) == 120 * DEPTH
    cal = RelevanceCalibrator.fit(distances, labels)
    assert cal.slope < 0 and cal(np.array([0.0]))[0] > cal(np.array([5.0]))[0]
