"""ragcun's losses, in sentence-transformers' loss API (``Loss(model, ...)``, ``forward(sentence_features, labels)``)."""

from __future__ import annotations

from ragcun.losses.covariance_isotropy_loss import CovarianceIsotropyLoss
from ragcun.losses.euclidean_infonce import EuclideanInfoNCELoss
from ragcun.losses.euclidean_margin import EuclideanMarginLoss
from ragcun.losses.euclidean_margin_mse import EuclideanMarginMSELoss
from ragcun.losses.gaussian_rag import GaussianRAGLoss
from ragcun.losses.jepa_predictive import JEPAPredictiveLoss, JEPAPredictor
from ragcun.losses.sigreg_loss import SIGRegLoss

__all__ = [
    "CovarianceIsotropyLoss",
    "EuclideanInfoNCELoss",
    "EuclideanMarginLoss",
    "EuclideanMarginMSELoss",
    "GaussianRAGLoss",
    "JEPAPredictiveLoss",
    "JEPAPredictor",
    "SIGRegLoss",
]
