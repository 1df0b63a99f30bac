"""Isotropy metrics: how close a set of embeddings is to N(0, I)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ragcun.stats.sigreg import sigreg


def covariance_isotropy(x: torch.Tensor) -> torch.Tensor:
    """The covariance-matching value ‖Cov(x) − var(x)·I‖_F / D (the original ragcun prototype's isotropy measure).

    Unbiased covariance of the (N, D) rows; ``var(x)`` is the unbiased variance of all entries.
    It is 0 when the covariance is a multiple of the identity, whatever that multiple.
    """
    if x.dim() != 2 or x.size(0) < 2:
        raise ValueError(f"covariance_isotropy expects an (N >= 2, D) tensor, got shape {tuple(x.shape)}")
    d = x.size(1)
    cov = torch.cov(x.T)
    return torch.linalg.matrix_norm(cov - x.var() * torch.eye(d, device=x.device, dtype=x.dtype)) / d


# Thresholds of ``IsotropyReport.is_isotropic``. Each is a tolerance plus an allowance for the
# sampling noise of N true N(0, I) samples, so that N(0, I) data pass at any sample size.
MEAN_TOL = 0.1  # ‖mean‖ / √D: the shift, relative to the typical vector norm
VARIANCE_RANGE = (0.8, 1.25)  # average per-dimension variance
COV_TOL = 0.25  # ‖Cov − I‖_F / √D (RMS eigenvalue deviation) beyond the noise of N(0, I) samples
RANK_RATIO_MIN = 0.5  # effective rank / min(D, N − 1)
SIGREG_MAX = 2.0  # sliced Epps–Pulley statistic; about 1 for N(0, I)
SIGREG_SLICES = 256
SIGREG_SEED = 0


@dataclass
class IsotropyReport:
    """Isotropy of N embeddings in D dimensions, measured against N(0, I).

    ``is_isotropic`` holds when every check passes; ``reasons`` names each failed check.
    """

    n: int
    dim: int
    mean_norm: float
    variance_mean: float
    variance_min: float
    variance_max: float
    offdiag_corr_mean: float
    offdiag_corr_max: float
    cov_identity_distance: float
    effective_rank: float
    rank_ratio: float
    sigreg: float
    norm_mean: float
    norm_std: float
    expected_norm: float
    is_isotropic: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def effective_rank(eigenvalues: np.ndarray) -> float:
    """exp(entropy) of the normalised eigen-spectrum (Roy & Vetterli, 2007)."""
    ev = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0, None)
    total = ev.sum()
    if total <= 0:
        return 0.0
    p = ev[ev > 0] / total
    return float(math.exp(-(p * np.log(p)).sum()))


def isotropy_report(embeddings) -> IsotropyReport:
    """Measure how far ``embeddings`` (N, D; numpy or torch) are from N(0, I).

    Checks, each with an allowance for the sampling noise of N samples:
    mean (‖μ‖/√D ≤ 0.1 + 3/√N), variance (average per-dimension variance in [0.8, 1.25] widened
    by 3·√(2/N)), covariance (‖Cov − I‖_F / √D ≤ 0.25 + 2·√(D/N)), rank (effective rank / min(D, N−1)
    ≥ 0.5) and SIGReg (256 slices, seed 0, ≤ 2.0; about 1 for N(0, I)).
    """
    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32) if not torch.is_tensor(embeddings) else embeddings)
    x = x.detach().float().cpu()
    if x.dim() != 2 or x.size(0) < 2:
        raise ValueError(f"isotropy_report expects an (N >= 2, D) array, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("isotropy_report: embeddings contain NaN or infinite values")
    n, d = x.shape
    xd = x.double()
    mean = xd.mean(0)
    cov = torch.cov(xd.T).reshape(d, d)
    var = torch.diagonal(cov)
    std = var.clamp_min(1e-24).sqrt()
    corr = cov / std[:, None] / std[None, :]
    offdiag = corr[~torch.eye(d, dtype=torch.bool)].abs() if d > 1 else torch.zeros(1, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(cov).numpy()
    erank = effective_rank(eig)
    rank_ratio = erank / max(1, min(d, n - 1))
    cov_dist = float(torch.linalg.matrix_norm(cov - torch.eye(d, dtype=torch.float64)))
    norms = xd.norm(dim=1)
    stat = float(sigreg(x, SIGREG_SLICES, SIGREG_SEED, distributed=False))  # a report is local to its process

    noise = 1.0 / math.sqrt(n)
    reasons = []
    if float(mean.norm()) / math.sqrt(d) > MEAN_TOL + 3 * noise:
        reasons.append("mean: the embeddings are not centred")
    lo, hi = VARIANCE_RANGE
    widen = 3 * math.sqrt(2.0) * noise
    if not lo - widen <= float(var.mean()) <= hi + widen:
        reasons.append("variance: the average per-dimension variance is not 1")
    if cov_dist / math.sqrt(d) > COV_TOL + 2 * math.sqrt(d / n):
        reasons.append("covariance: the covariance is far from the identity")
    if rank_ratio < RANK_RATIO_MIN:
        reasons.append("rank: the embeddings use few directions (dimensional collapse)")
    if stat > SIGREG_MAX:
        reasons.append("sigreg: the 1-D projections are not standard normal")

    return IsotropyReport(
        n=n,
        dim=d,
        mean_norm=float(mean.norm()),
        variance_mean=float(var.mean()),
        variance_min=float(var.min()),
        variance_max=float(var.max()),
        offdiag_corr_mean=float(offdiag.mean()),
        offdiag_corr_max=float(offdiag.max()),
        cov_identity_distance=cov_dist,
        effective_rank=erank,
        rank_ratio=rank_ratio,
        sigreg=stat,
        norm_mean=float(norms.mean()),
        norm_std=float(norms.std()),
        expected_norm=math.sqrt(d),
        is_isotropic=not reasons,
        reasons=reasons,
    )
