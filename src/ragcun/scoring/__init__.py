"""Scores for distances: the random-pair distance law (a chi-squared survival) and the relevance calibrator
(``P(relevant | distance)`` fitted on labelled hits)."""
