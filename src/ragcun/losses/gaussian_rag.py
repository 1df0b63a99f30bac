"""GaussianRAGLoss: the weighted sum of ragcun's losses, each component reported."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from torch import Tensor, nn

from ragcun.losses._embed import ColumnLoss, embed_features
from ragcun.losses.covariance_isotropy_loss import CovarianceIsotropyLoss
from ragcun.losses.euclidean_infonce import EuclideanInfoNCELoss
from ragcun.losses.euclidean_margin import EuclideanMarginLoss
from ragcun.losses.euclidean_margin_mse import EuclideanMarginMSELoss
from ragcun.losses.jepa_predictive import JEPAPredictiveLoss
from ragcun.losses.sigreg_loss import LEJEPA_CITATION, SIGRegLoss


class GaussianRAGLoss(nn.Module):
    """λ-weighted sum of the retrieval and isotropy losses on one shared forward pass::

        L = λ_c · EuclideanInfoNCE + λ_iso · SIGReg + λ_pred · JEPAPredictive
            + λ_cov · CovarianceIsotropy + λ_m · EuclideanMargin + λ_dist · EuclideanMarginMSE

    Defaults: λ_c = 1, λ_iso = 0.5 (the weight that kept a frozen-base head isotropic while
    improving retrieval in ragcun's probes), the rest 0 (off). A weight of 0 builds no component.
    The forward returns a dict of weighted components, which sentence-transformers' trainer sums
    and logs one by one. :meth:`compute_loss_from_embeddings` also takes corpus documents, as
    extra negatives for the ranking components and as extra samples for the distribution ones.

    Args:
        model: the SentenceTransformer being trained.
        contrastive_weight, isotropy_weight, predictive_weight, covariance_weight, margin_weight,
            distil_weight: the λs (``distil``: MarginMSE on the labels, a teacher's margins).
        temperature: :class:`EuclideanInfoNCELoss`'s τ (``None``: 0.1 × dimension).
        num_slices: :class:`SIGRegLoss`'s number of slices.
        margin: :class:`EuclideanMarginLoss`'s margin.
        symmetric: :class:`JEPAPredictiveLoss`'s reverse direction.

    References:
        - Balestriero & LeCun, "LeJEPA" (arXiv:2511.08544): SIGReg and the predictive loss.
        - van den Oord et al., "Representation Learning with Contrastive Predictive Coding"
          (arXiv:1807.03748): InfoNCE.

    Requirements:
        1. (anchor, positive) pairs or (anchor, positive, negative …) n-tuples (a predictive or
           ranking component needs at least 2 columns; isotropy-only objectives take any).

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative) triplets           | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer

            from ragcun import GaussianEncoder
            from ragcun.losses import GaussianRAGLoss

            model = GaussianEncoder()  # the bundled all-MiniLM-L6-v2 with a Gaussian head
            train_dataset = Dataset.from_dict({
                "anchor": ["What causes tides?", "Who wrote Hamlet?"],
                "positive": ["Tides are caused by the Moon's gravity.", "Hamlet is a play by Shakespeare."],
            })
            loss = GaussianRAGLoss(model, contrastive_weight=1.0, isotropy_weight=0.5)

            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    #: Components that rank documents against each anchor: corpus negatives join their documents.
    RANKING_COMPONENTS = ("contrastive", "margin")
    #: Components that shape the embeddings' distribution: a corpus sample joins their embeddings.
    DISTRIBUTION_COMPONENTS = ("isotropy", "covariance")

    def __init__(
        self,
        model: nn.Module,
        contrastive_weight: float = 1.0,
        isotropy_weight: float = 0.5,
        predictive_weight: float = 0.0,
        covariance_weight: float = 0.0,
        margin_weight: float = 0.0,
        distil_weight: float = 0.0,
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
            "distil": (distil_weight, lambda: EuclideanMarginMSELoss(model)),
        }
        self.weights = {name: float(w) for name, (w, _) in candidates.items() if w}
        if not self.weights:
            raise ValueError("GaussianRAGLoss needs at least one non-zero weight")
        self.components = nn.ModuleDict({name: make() for name, (w, make) in candidates.items() if w})

    def compute_loss_from_embeddings(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        *,
        corpus_negatives: Tensor | None = None,
        corpus_sample: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Weighted components on already-computed columns (anchors, positives[, negatives]), each (B, D).

        ``corpus_negatives`` (M, D), corpus documents other than this batch's positives, are
        appended to the documents every anchor is ranked against by the ranking components
        (:attr:`RANKING_COMPONENTS`); ``corpus_sample`` (K, D), random corpus documents, joins the
        embeddings whose distribution the :attr:`DISTRIBUTION_COMPONENTS` shape, so that the
        indexed documents, not only the batch, are pushed toward N(0, I). Frozen-base training
        passes both from its cached corpus. ``labels`` (a teacher's margins) feed the distil component only.
        """
        out = {}
        for name, loss in self._parts():
            columns = embeddings
            if name in self.RANKING_COMPONENTS and corpus_negatives is not None and len(corpus_negatives):
                columns = [*embeddings, corpus_negatives]
            elif name in self.DISTRIBUTION_COMPONENTS and corpus_sample is not None and len(corpus_sample):
                columns = [*embeddings, corpus_sample]
            out[name] = self.weights[name] * loss.compute_loss_from_embeddings(columns, labels)
        return out

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> dict[str, Tensor]:
        """Embed each column with the model and return the weighted components."""
        return self.compute_loss_from_embeddings(embed_features(self.model, sentence_features), labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights)} | {name: loss.get_config_dict() for name, loss in self._parts()}

    def _parts(self) -> list[tuple[str, ColumnLoss]]:
        """The components by name (``self.components`` registers their parameters; this names their type)."""
        return [(name, cast(ColumnLoss, loss)) for name, loss in self.components.items()]

    @property
    def citation(self) -> str:
        return LEJEPA_CITATION
