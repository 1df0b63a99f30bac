"""The training report: ``training_report.json`` and PNG plots (loss curves; isotropy before/after)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ragcun.io.atomic import atomic_file  # noqa: E402
from ragcun_train.similarity import describe_transform  # noqa: E402

REPORT_FILE = "training_report.json"
LOSS_PLOT = "loss_curves.png"
ISOTROPY_PLOT = "isotropy_before_after.png"
COMPONENT_KEYS = ("contrastive", "isotropy", "predictive", "covariance", "margin")


def _save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as a PNG, atomically (:func:`ragcun.io.atomic.atomic_file`), and close it."""
    try:
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def _smooth(y: np.ndarray) -> np.ndarray:
    """Trailing moving average over about 5% of the run (at least 1 step)."""
    w = max(1, len(y) // 20)
    c = np.cumsum(np.insert(np.nan_to_num(y), 0, 0.0))
    out = np.empty_like(y)
    for i in range(len(y)):
        lo = max(0, i + 1 - w)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    """Total loss and each weighted component against the step."""
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in history]
    for key in ("loss", *COMPONENT_KEYS):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            y = np.array([math.nan if v is None else v for v in values], dtype=float)
            line, = ax.plot(steps, y, lw=0.6, alpha=0.35)
            ax.plot(steps, _smooth(y), color=line.get_color(), lw=2 if key == "loss" else 1.3,
                    label="total" if key == "loss" else f"{key} (weighted)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (thin: per step; thick: moving average)")
    ax.set_title("ragcun-train: loss components")
    ax.grid(alpha=0.3)
    ax.legend()
    _save_figure(fig, path)


ISOTROPY_BARS = (
    ("sigreg", "SIGReg (≈1 for N(0,I))", 1.0),
    ("variance_mean", "mean variance (1)", 1.0),
    ("mean_norm_rel", "‖mean‖/√D (0)", 0.0),
    ("cov_rel", "‖Cov−I‖/√D (0)", 0.0),
    ("offdiag_corr_mean", "mean |corr| (0)", 0.0),
    ("rank_ratio", "eff. rank / D (1)", 1.0),
)


def plot_isotropy(before: dict[str, Any], after: dict[str, Any], spectra: dict[str, np.ndarray], path: Path) -> None:
    """Covariance eigen-spectra before/after (N(0, I) is flat at 1) and the isotropy report's key numbers."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, eig in spectra.items():
        left.plot(np.arange(1, len(eig) + 1), np.sort(eig)[::-1], label=label)
    left.axhline(1.0, color="k", ls="--", lw=1, label="N(0, I)")
    left.set_yscale("log")
    top = max(float(np.max(e)) for e in spectra.values())
    left.set_ylim(1e-4, top * 2)
    left.set_xlabel("eigenvalue rank")
    left.set_ylabel("covariance eigenvalue")
    left.set_title("covariance spectrum")
    left.legend()
    left.grid(alpha=0.3)

    def values(r: dict[str, Any]) -> list[float]:
        derived = {"mean_norm_rel": r["mean_norm"] / math.sqrt(r["dim"]), "cov_rel": r["cov_identity_distance"] / math.sqrt(r["dim"])}
        return [float((r | derived)[k]) for k, _, _ in ISOTROPY_BARS]

    x = np.arange(len(ISOTROPY_BARS))
    right.bar(x - 0.2, values(before), 0.4, label="before")
    right.bar(x + 0.2, values(after), 0.4, label="after")
    right.scatter(x, [t for _, _, t in ISOTROPY_BARS], marker="_", s=400, color="k", label="N(0, I)", zorder=3)
    right.set_xticks(x, [lbl for _, lbl, _ in ISOTROPY_BARS], rotation=25, ha="right")
    right.set_yscale("symlog", linthresh=1.0)
    right.set_title("isotropy report")
    right.legend()
    right.grid(alpha=0.3, axis="y")
    _save_figure(fig, path)


def covariance_spectrum(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of the covariance of the rows of ``x`` (N, D)."""
    return np.linalg.eigvalsh(np.cov(np.asarray(x, dtype=np.float64), rowvar=False))


def comparison_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, measures)`` of the base (cosine), before and after rows that the report has."""
    rows = [("base (cosine)", report.get("base")), ("before", report["before"]), ("after", report["after"])]
    return [(name, r) for name, r in rows if r]


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable before/after lines for the console."""
    lines = []
    ev = report.get("eval")
    if ev:
        lines.append(f"evaluation: {ev['source']} (split {ev['split']}: {ev['queries']} queries, {ev['docs']} docs)")
    for name, r in comparison_rows(report):
        iso = r.get("isotropy")
        parts = [f"{name:>14}:"]
        if r.get("ndcg@10") is not None:
            parts.append(f"nDCG@10 {r['ndcg@10']:.4f}")
        if iso:
            parts.append(f"SIGReg {iso['sigreg']:.2f}  isotropic {iso['is_isotropic']}  eff.rank {iso['effective_rank']:.0f}/{iso['dim']}")
        lines.append("  ".join(parts))
    transform = report.get("transform")
    if transform:
        what, ranking = describe_transform(transform)
        lines.append(f"     transform:  {what}")
        lines.append(f"       ranking:  {ranking}")
    cal = report.get("calibrator")
    if cal:
        lines.append(f"    calibrator:  P(relevant) = sigmoid({cal['intercept']:.3f} {cal['slope']:+.5f} * d^2), "
                     f"{cal['fitted_on']}")
        h = cal.get("hybrid")
        lines.append("   hybrid hits:  " + ("distance only" if h is None else
                     f"P(relevant) = sigmoid({h['intercept']:.3f} {h['slope']:+.5f} * d^2 {h['bm25']:+.3f} * bm25_share), "
                     f"{h['n_pairs']} hybrid hits"))
    fusion = report.get("fusion")
    if fusion:
        lines.append(f"        fusion:  {fusion_line(fusion)}")
    return lines


def fusion_line(fusion: dict[str, Any]) -> str:
    """One line on fitted fusion settings (``asdict`` of a :class:`ragcun.scoring.fusion_settings.FusionSettings`)."""
    fitted = fusion["fitted_on"]
    curve = fitted.get("ndcg@10_by_alpha") or {}
    chosen = curve.get(f"{fusion['alpha']:.2f}")
    scored = f": hybrid nDCG@10 {chosen:.4f}" if chosen is not None else ""
    where = f" on {fitted['held_out_queries']} held-back queries of {fitted.get('source', '?')}" if "held_out_queries" in fitted else ""
    others = []
    for name, alpha in (("store default", fitted.get("default_alpha")), ("best", fitted.get("best_alpha"))):
        if isinstance(alpha, (int, float)) and alpha != fusion["alpha"] and f"{alpha:.2f}" in curve:
            others.append(f"{name} {alpha:.2f}: {curve[f'{alpha:.2f}']:.4f}")
    if "rule" in fitted:
        others.append(f"{fitted['rule']} rule")
    versus = f" ({'; '.join(others)})" if others else ""
    return f"hybrid dense weight alpha {fusion['alpha']:.2f} ({fusion['normalization']}){scored}{where}{versus}"
