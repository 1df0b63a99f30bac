"""GaussianRAGLoss: the weighted sum of ragcun's losses, each component reported."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from torch import Tensor, nn

from ragcun.losses._embed import ColumnLoss, embed_features
from ragcun.losses.covariance_isotropy_loss import CovarianceIsotropyLoss
from ragcun.losses.euclidean_infonce import EuclideanInfoNCELoss
from ragcun.losses.euclidean_margin import EuclideanMarginLoss
from ragcun.losses.jepa_predictive import JEPAPredictiveLoss
from ragcun.losses.sigreg_loss import LEJEPA_CITATION, SIGRegLoss


class GaussianRAGLoss(nn.Module):
    """λ-weighted sum of the retrieval and isotropy losses on one shared forward pass::

        L = λ_c · EuclideanInfoNCE + λ_iso · SIGReg + λ_pred · JEPAPredictive
            + λ_cov · CovarianceIsotropy + λ_m · EuclideanMargin

    Defaults: λ_c = 1, λ_iso = 0.5 (the weight that kept a frozen-base head isotropic while
    improving retrieval in ragcun's probes), the rest 0 (off). A weight of 0 builds no component.
    The forward returns a dict of weighted components, which sentence-transformers' trainer sums
    and logs one by one.

    Args:
        model: the SentenceTransformer being trained.
        contrastive_weight, isotropy_weight, predictive_weight, covariance_weight, margin_weight: the λs.
        temperature: :class:`EuclideanInfoNCELoss`'s τ (``None``: 0.1 × dimension).
        num_slices: :class:`SIGRegLoss`'s number of slices.
        margin: :class:`EuclideanMarginLoss`'s margin.
        symmetric: :class:`JEPAPredictiveLoss`'s reverse direction.
    """

    def __init__(
        self,
        model: nn.Module,
        contrastive_weight: float = 1.0,
        isotropy_weight: float = 0.5,
        predictive_weight: float = 0.0,
        covariance_weight: float = 0.0,
        margin_weight: float = 0.0,
        temperature: float | None = None,
        num_slices: int = 256,
        margin: float = 1.0,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        candidates = {
            "contrastive": (contrastive_weight, lambda: EuclideanInfoNCELoss(model, temperature)),
            "isotropy": (isotropy_weight, lambda: SIGRegLoss(model, num_slices)),
            "predictive": (predictive_weight, lambda: JEPAPredictiveLoss(model, symmetric=symmetric)),
            "covariance": (covariance_weight, lambda: CovarianceIsotropyLoss(model)),
            "margin": (margin_weight, lambda: EuclideanMarginLoss(model, margin)),
        }
        self.weights = {name: float(w) for name, (w, _) in candidates.items() if w}
        if not self.weights:
            raise ValueError("GaussianRAGLoss needs at least one non-zero weight")
        self.components = nn.ModuleDict({name: make() for name, (w, make) in candidates.items() if w})

    def compute(self, embeddings: list[Tensor]) -> dict[str, Tensor]:
        """Weighted components on already-computed columns."""
        return {name: self.weights[name] * loss.compute(embeddings) for name, loss in self._parts()}

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> dict[str, Tensor]:
        return self.compute(embed_features(self.model, sentence_features))

    def get_config_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights)} | {name: loss.get_config_dict() for name, loss in self._parts()}

    def _parts(self) -> list[tuple[str, ColumnLoss]]:
        """The components by name (``self.components`` registers their parameters; this names their type)."""
        return [(name, cast(ColumnLoss, loss)) for name, loss in self.components.items()]

    @property
    def citation(self) -> str:
        return LEJEPA_CITATION
