"""SIGReg's functional layer: the Epps–Pulley statistic and LeJEPA's random slicing.

This reproduces the official LeJEPA code (``lejepa.univariate.EppsPulley`` with its defaults
``t_max=3``, ``n_points=17``, trapezoid rule on ``[0, t_max]`` with doubled weights, and
``lejepa.multivariate.SlicingUnivariateTest``'s projections) to float32 precision; the test
``tests/core/test_sigreg_reference.py`` checks it against the official outputs.

Epps–Pulley (1983) compares the empirical characteristic function of a sample with that of a
standard normal::

    T = N · ∫ |φ_N(t) − exp(−t²/2)|² exp(−t²/2) dt

Balestriero & LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the
Heuristics" (arXiv:2511.08544), apply it to random 1-D projections (slices) of the embeddings:
Sketched Isotropic Gaussian Regularisation.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist

from ragcun.stats.distributed import world_size

T_MAX = 3.0
N_POINTS = 17


def _world_size(distributed: bool = True) -> int:
    """The number of ranks the statistic covers: the process group's, or 1 when not ``distributed``."""
    return world_size() if distributed else 1


def _all_reduce_mean(x: torch.Tensor, distributed: bool = True) -> torch.Tensor:
    """Differentiable mean over ranks (identity outside ``torch.distributed`` or when not ``distributed``).

    The official code all-reduces with ``AVG``; gloo has no ``AVG``, so this sums and divides,
    which is the same value.
    """
    world = _world_size(distributed)
    if world == 1:
        return x
    with warnings.catch_warnings():  # its deprecation notice points at a non-differentiable successor
        warnings.simplefilter("ignore", FutureWarning)
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(x, op=dist.ReduceOp.SUM) / world


def quadrature(t_max: float = T_MAX, n_points: int = N_POINTS, device=None) -> tuple[torch.Tensor, ...]:
    """Integration nodes ``t``, the target ``φ(t) = exp(−t²/2)`` and trapezoid weights × φ(t).

    Only ``t ≥ 0`` is integrated; the weights are doubled for the symmetric half, as in LeJEPA.
    """
    if n_points < 2 or n_points % 2 == 0:
        raise ValueError(f"n_points must be an odd integer >= 3, got {n_points}")
    t = torch.linspace(0, t_max, n_points, dtype=torch.float32, device=device)
    dt = t_max / (n_points - 1)
    weights = torch.full((n_points,), 2 * dt, dtype=torch.float32, device=device)
    weights[[0, -1]] = dt
    phi = t.square().mul(0.5).neg().exp()
    return t, phi, weights * phi


def epps_pulley(x: torch.Tensor, t_max: float = T_MAX, n_points: int = N_POINTS, distributed: bool = True) -> torch.Tensor:
    """The Epps–Pulley statistic of each column of ``x`` (…, N, D) against N(0, 1), shape (…, D).

    Scaled by the global sample count N × world size, as the official code does. Under
    ``torch.distributed`` the characteristic-function means are averaged across ranks, so a batch
    split evenly over ranks gives the statistic of the whole batch; each rank's gradient is then
    world size × its share, which DDP's gradient averaging turns into the whole-batch gradient.
    ``distributed=False`` keeps the statistic local to this process (for reports and metrics).
    """
    if x.dim() < 2:
        raise ValueError(f"epps_pulley expects an (N, D) tensor, got shape {tuple(x.shape)}")
    t, phi, weights = quadrature(t_max, n_points, device=x.device)
    n = x.size(-2)
    x_t = x.float().unsqueeze(-1) * t  # (…, N, D, n_points)
    cos_mean = _all_reduce_mean(torch.cos(x_t).mean(-3), distributed)
    sin_mean = _all_reduce_mean(torch.sin(x_t).mean(-3), distributed)
    err = (cos_mean - phi).square() + sin_mean.square()
    return (err @ weights) * n * _world_size(distributed)


def slice_projections(dim: int, num_slices: int, step: int = 0, device=None) -> torch.Tensor:
    """The (dim, num_slices) unit-column projection LeJEPA's slicer draws at ``step``.

    A CPU ``torch.Generator`` seeded with ``step`` draws ``randn(dim, num_slices)``; columns are
    normalised to unit length. Drawing on the CPU makes the slices identical on every device.
    """
    g = torch.Generator(device="cpu").manual_seed(int(step))
    a = torch.randn((dim, num_slices), generator=g)
    a = a / a.norm(p=2, dim=0)
    return a.to(device) if device is not None else a


def sliced_epps_pulley(
    x: torch.Tensor, projections: torch.Tensor, t_max: float = T_MAX, n_points: int = N_POINTS, distributed: bool = True
) -> torch.Tensor:
    """The Epps–Pulley statistic of each 1-D slice ``x @ projections``, shape (num_slices,)."""
    if x.size(-1) != projections.size(0):
        raise ValueError(
            f"embedding dimension {x.size(-1)} does not match the projections' {projections.size(0)}"
        )
    return epps_pulley(x.float() @ projections.to(x.device, torch.float32), t_max, n_points, distributed)


def sigreg(
    x: torch.Tensor,
    num_slices: int = 256,
    step: int = 0,
    t_max: float = T_MAX,
    n_points: int = N_POINTS,
    distributed: bool = True,
) -> torch.Tensor:
    """Mean sliced Epps–Pulley statistic of ``x`` (N, D) with the slices drawn at ``step``.

    About 1 for true N(0, I) samples; it grows with any departure (shift, scale, anisotropy,
    collapse). ``distributed=False`` keeps it local to this process.
    """
    projections = slice_projections(x.size(-1), num_slices, step, x.device)
    return sliced_epps_pulley(x, projections, t_max, n_points, distributed).mean()
