"""``--objective similarity`` (the label-free default): no training, a similarity transform fitted to the corpus.

The head's outputs are mapped by ``y ↦ s · R y`` (:func:`ragcun_train.recentre.similarity_fit_head`): rotated
onto the corpus's principal axes and scaled to ``E‖y − μ‖² = D``, in closed form. That adapts the axes and the
scale the isotropy statistics and the distance law measure, and leaves every ranking exactly as it was: every
distance and every norm is multiplied by ``s``, so dense L2 and every hybrid fusion (fixed floors included) rank
as before. ``--objective similarity-centred`` also centres on the corpus mean (``s · R (y − μ)``): dense rankings
stay, but the fixed-floor hybrid fusion, whose dense floor is measured from the origin, moves. The model's relevance calibrator,
a function of the distance, is rescaled to match (:meth:`ragcun.scoring.calibrator.RelevanceCalibrator.rescaled`),
so its probabilities do not change either.
"""

from __future__ import annotations

from typing import Any

import torch

from ragcun_train.recentre import similarity_fit_head
from ragcun_train.state import Cached, Outcome, Run, Start


def describe_transform(transform: dict[str, Any]) -> tuple[str, str]:
    """What a run's ``transform`` (its report entry) did, and what it did to rankings: two plain sentences."""
    centred = transform["shift_norm"] > 0.0
    what = (f"{'centred on the corpus mean (shift ' + format(transform['shift_norm'], '.3f') + '), ' if centred else ''}"
            f"rotated onto the corpus's principal axes, every distance scaled by {transform['distance_scale']:.4f}; "
            f"fitted on {transform['fitted_on_documents']} documents")
    if centred:
        return what, ("dense rankings UNCHANGED (L2 ignores a shift, a rotation and one scale); hybrid rankings with "
                      "fixed floors MOVE, since their dense floor is measured from the origin, which moved")
    return what, ("UNCHANGED - a rotation and one scale multiply every distance and every norm alike, so dense "
                  "and every hybrid fusion rank exactly as before; only the isotropy statistics and the distance scale move")


def run_similarity(run: Run, cached: Cached, start: Start) -> Outcome:
    """Fit and fold the similarity transform on the corpus documents the head initialisation uses (``start.fit_ids``);
    rescale the calibrator; measure on rank 0."""
    model = run.model
    with torch.no_grad():
        info: dict[str, Any] = similarity_fit_head(model, model.apply_head(cached.corpus[start.fit_ids]).cpu(),
                                                   centre=run.cfg.objective == "similarity-centred")
    calibrator = model.relevance_calibrator
    model.relevance_calibrator = None if calibrator is None else calibrator.rescaled(info["distance_scale"])
    info |= {"fitted_on_documents": int(start.fit_ids.numel()),
             "calibrator": "rescaled" if calibrator is not None else "none",
             "ranking": "unchanged" if info["shift_norm"] == 0.0 else "dense unchanged"}
    return Outcome(train_set=run.data.loaded, history=[], transform=info,
                   after=cached.measure(model, run.ev) if run.rank == 0 else {})
