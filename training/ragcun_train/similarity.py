"""``--objective similarity`` (the label-free default): no training, a similarity transform fitted to the corpus.

The head's outputs are mapped by ``y ↦ s · R (y − μ)`` (:func:`ragcun_train.recentre.similarity_fit_head`):
centred on the corpus mean, rotated onto its principal axes and scaled to ``E‖y − μ‖² = D``, in closed form.
That adapts the mean, the axes and the scale the isotropy statistics and the distance law measure, and leaves
every L2 ranking exactly as it was (every distance is multiplied by ``s``). The model's relevance calibrator,
a function of the distance, is rescaled to match (:meth:`ragcun.scoring.calibrator.RelevanceCalibrator.rescaled`),
so its probabilities do not change either.
"""

from __future__ import annotations

from typing import Any

import torch

from ragcun_train.recentre import similarity_fit_head
from ragcun_train.state import Cached, Outcome, Run, Start

RANKING_UNCHANGED = ("ranking unchanged: the outputs were mapped by a similarity transform (centre, rotation, one scale) "
                     "fitted to the corpus, which keeps every L2 ranking and hybrid min-max fusion exactly as before")


def run_similarity(run: Run, cached: Cached, start: Start) -> Outcome:
    """Fit and fold the similarity transform on the corpus documents the head initialisation uses (``start.fit_ids``);
    rescale the calibrator; measure on rank 0."""
    model = run.model
    with torch.no_grad():
        info: dict[str, Any] = similarity_fit_head(model, model.apply_head(cached.corpus[start.fit_ids]).cpu())
    calibrator = model.relevance_calibrator
    model.relevance_calibrator = None if calibrator is None else calibrator.rescaled(info["distance_scale"])
    info |= {"fitted_on_documents": int(start.fit_ids.numel()),
             "calibrator": "rescaled" if calibrator is not None else "none",
             "ranking": "unchanged"}
    return Outcome(train_set=run.data.loaded, history=[], transform=info,
                   after=cached.measure(model, run.ev) if run.rank == 0 else {})
