"""ragcun: isotropic Gaussian text embeddings, trained with LeJEPA's SIGReg, ranked by L2 distance."""

from ragcun.encoder import BUNDLED_MODEL_NAME, GaussianEncoder, bundled_model_path, resolve_model_path
from ragcun.isotropy import IsotropyReport, covariance_isotropy, isotropy_report
from ragcun.vector_index import VectorIndex

__version__ = "0.1.0"

__all__ = [
    "BUNDLED_MODEL_NAME",
    "GaussianEncoder",
    "IsotropyReport",
    "VectorIndex",
    "bundled_model_path",
    "covariance_isotropy",
    "isotropy_report",
    "resolve_model_path",
]
