"""Isotropy of each model's document embeddings, side by side, with plots.

Embeddings are the model's outputs in its geometry (``bundled`` → unit vectors; ``bundled:whitened``
→ ZCA-whitened on these texts; a Gaussian model → raw outputs). Written into the output folder:

- ``isotropy.csv``: ``ragcun.isotropy_report`` metrics plus the Text-LeJEPA collapse diagnostics
  (rank ratio, dimensional usage = share of variance in the top 1 / 10 / ⌈D/10⌉ principal
  directions, dims for 90% of the variance, mean off-diagonal cosine), one column per model;
- ``isotropy_comparison.csv`` / ``.png``: key metrics, the first model ("original") against the
  others ("trained");
- ``norms.png`` (norm histogram against the χ_D density of N(0, I) and of N(0, σ²I) with the
  data's mean variance σ²), ``per_dim.png`` (per-dimension mean and variance), ``covariance.png`` (first 64 dimensions),
  ``spectrum.png`` (covariance eigenvalues, log scale), ``pca.png`` (2-D PCA scatter) and
  ``cosine_similarity.png`` (pairwise cosine of the first 64 texts).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from ragcun import isotropy_report  # noqa: E402
from ragcun_eval.beir import load_corpus  # noqa: E402
from ragcun_eval.geometry import apply_geometry  # noqa: E402
from ragcun_eval.models import Embedder, ModelSpec, display_labels  # noqa: E402
from ragcun_eval.report import markdown_table  # noqa: E402

COMPARISON = ("rank_ratio", "usage_top10", "offdiag_corr_mean", "mean_cosine", "cov_identity_distance_per_sqrt_d", "sigreg")
SIM_TEXTS = 64
HEATMAP_DIMS = 64


def load_texts(source: str | Path, max_texts: int | None = None, seed: int = 0) -> list[str]:
    """Texts of a file (one per non-blank line) or of a BEIR folder's corpus; a seeded sample of ``max_texts``."""
    path = Path(source)
    if path.is_dir():
        texts = load_corpus(path / "corpus.jsonl")[1]
    elif path.is_file():
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise FileNotFoundError(f"--texts {path} does not exist")
    if len(texts) < 3:
        raise ValueError(f"{path}: need at least 3 texts for isotropy statistics, found {len(texts)}")
    if max_texts and max_texts < len(texts):
        rng = np.random.default_rng(seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_texts, replace=False))]
    return texts


def collapse_diagnostics(x: np.ndarray) -> dict[str, float]:
    """Dimensional usage (variance share of the top 1, 10, ⌈D/10⌉ principal directions; dims for 90%) and mean off-diagonal cosine."""
    eig = np.sort(np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False)), 0, None))[::-1]
    share = np.cumsum(eig) / eig.sum()
    d = x.shape[1]
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    gram = unit @ unit.T
    n = len(x)
    return {"usage_top1": float(share[0]), "usage_top10": float(share[min(10, d) - 1]),
            "usage_top10pct": float(share[math.ceil(d / 10) - 1]), "dims_for_90pct": int(np.searchsorted(share, 0.9) + 1),
            "mean_cosine": float((gram.sum() - np.trace(gram)) / (n * (n - 1)))}


def measure(x: np.ndarray) -> dict[str, float]:
    """All isotropy metrics of one (N, D) embedding matrix."""
    report = isotropy_report(x).to_dict()
    report.pop("reasons")
    metrics = {**report, **collapse_diagnostics(x)}
    metrics["cov_identity_distance_per_sqrt_d"] = metrics["cov_identity_distance"] / math.sqrt(x.shape[1])
    return metrics


def _panels(n: int, title: str, size: float = 4.0):
    fig, axes = plt.subplots(1, n, figsize=(size * n, size * 0.85), squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_all(embeddings: dict[str, np.ndarray], out: Path) -> None:
    """The per-model PNGs listed in the module docstring."""
    n = len(embeddings)
    fig, axes = _panels(n, "Norm histogram against the χ law of N(0, σ²I)")
    for ax, (label, x) in zip(axes, embeddings.items()):
        norms, d = np.linalg.norm(x, axis=1), x.shape[1]
        sigma = math.sqrt(x.var(axis=0, ddof=1).mean())
        lo = min(norms.min(), stats.chi.ppf(0.001, d) * sigma)
        hi = max(norms.max(), stats.chi.ppf(0.999, d) * sigma)
        pad = 0.05 * (hi - lo) + 1e-3
        grid = np.linspace(lo - pad, hi + pad, 400)
        ax.hist(norms, bins=np.linspace(lo - pad, hi + pad, 60), density=True, alpha=0.6, label="embeddings")
        ax.plot(grid, stats.chi.pdf(grid / sigma, d) / sigma, "r-", lw=1, label=f"χ_D, σ = {sigma:.3g} (data's)")
        unit_in_view = grid[0] <= math.sqrt(d) <= grid[-1]
        ax.plot(grid, stats.chi.pdf(grid, d), "k--", lw=1,
                label="χ_D, σ = 1 (N(0, I))" + ("" if unit_in_view else f"; mode √D ≈ {math.sqrt(d):.1f} off-scale"))
        ax.set(title=label, xlabel="‖x‖")
        ax.legend(fontsize=7)
    _save(fig, out / "norms.png")

    fig, axes = plt.subplots(2, n, figsize=(4.5 * n, 6), squeeze=False)
    fig.suptitle("Per-dimension mean and variance (N(0, I): 0 and 1)")
    for col, (label, x) in enumerate(embeddings.items()):
        dims = np.arange(x.shape[1])
        axes[0, col].bar(dims, x.mean(0), width=1.0)
        axes[0, col].axhline(0, color="k", lw=0.5)
        axes[0, col].set(title=label, ylabel="mean")
        axes[1, col].bar(dims, x.var(0, ddof=1), width=1.0, color="tab:orange")
        axes[1, col].axhline(1, color="k", ls="--", lw=0.8)
        axes[1, col].set(xlabel="dimension", ylabel="variance (log)", yscale="log")
    _save(fig, out / "per_dim.png")

    fig, axes = _panels(n, f"Covariance of the first {HEATMAP_DIMS} dimensions (N(0, I): the identity)")
    for ax, (label, x) in zip(axes, embeddings.items()):
        cov = np.cov(x[:, :HEATMAP_DIMS], rowvar=False)
        scale = np.abs(cov).max()
        im = ax.imshow(cov, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_title(label)
        fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, out / "covariance.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, x in embeddings.items():
        eig = np.sort(np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False)), 1e-12, None))[::-1][: len(x) - 1]
        ax.plot(np.arange(1, len(eig) + 1), eig / eig.mean(), label=label)
    ax.axhline(1, color="k", ls="--", lw=0.8, label="isotropic (flat)")
    ax.set(yscale="log", xlabel="rank", ylabel="eigenvalue / mean eigenvalue", title="Covariance eigen-spectrum (the first N − 1 eigenvalues)")
    ax.legend(fontsize=7)
    _save(fig, out / "spectrum.png")

    fig, axes = _panels(n, "2-D PCA scatter")
    for ax, (label, x) in zip(axes, embeddings.items()):
        centred = x - x.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        p = centred @ vt[:2].T
        ax.scatter(p[:, 0], p[:, 1], s=3, alpha=0.5)
        share = s[:2] ** 2 / (s**2).sum()
        ax.set(title=label, xlabel=f"PC1 ({share[0]:.1%})", ylabel=f"PC2 ({share[1]:.1%})")
        ax.set_aspect("equal", "datalim")
    _save(fig, out / "pca.png")

    fig, axes = _panels(n, f"Cosine similarity of the first {SIM_TEXTS} texts")
    for ax, (label, x) in zip(axes, embeddings.items()):
        u = x[:SIM_TEXTS] / np.maximum(np.linalg.norm(x[:SIM_TEXTS], axis=1, keepdims=True), 1e-12)
        im = ax.imshow(u @ u.T, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(label)
        fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, out / "cosine_similarity.png")


def comparison_plot(rows: Sequence[dict], path: Path) -> None:
    """Grouped bars of :data:`COMPARISON`, original against trained."""
    fig, axes = plt.subplots(1, len(COMPARISON), figsize=(2.6 * len(COMPARISON), 3.6))
    for ax, metric in zip(axes, COMPARISON):
        ax.bar(range(len(rows)), [r[metric] for r in rows], color=[f"C{i}" for i in range(len(rows))])
        ax.set_xticks(range(len(rows)), [r["role"] for r in rows], fontsize=8)
        ax.set_title(metric, fontsize=9)
        if metric == "sigreg":
            ax.set_yscale("log")
    fig.legend([plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(rows))], [r["model"] for r in rows],
               loc="lower center", ncol=len(rows), fontsize=8)
    fig.suptitle("Isotropy: original against trained")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_isotropy(specs: Sequence[ModelSpec], texts_source: str | Path, embedder: Embedder, out: Path,
                 max_texts: int | None = None) -> str:
    """Embed the texts with each model, write the CSVs and PNGs into ``out``; return a Markdown table."""
    texts = load_texts(texts_source, max_texts)
    embeddings = {}
    for spec, label in zip(specs, display_labels(specs)):
        raw = embedder.embed(spec, texts, "document")
        embeddings[label] = apply_geometry(spec.dense_geometry, raw, raw[:0]).docs.astype(np.float64)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {label: measure(x) for label, x in embeddings.items()}
    names = list(next(iter(metrics.values())))
    with (out / "isotropy.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", *metrics])
        writer.writerows([name, *(m[name] for m in metrics.values())] for name in names)
    rows = [{"model": label, "role": "original" if i == 0 else "trained", **{k: m[k] for k in COMPARISON}}
            for i, (label, m) in enumerate(metrics.items())]
    with (out / "isotropy_comparison.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    comparison_plot(rows, out / "isotropy_comparison.png")
    plot_all(embeddings, out)
    shown = ("n", "dim", "mean_norm", "variance_mean", "offdiag_corr_mean", "effective_rank", "rank_ratio", "sigreg",
             "usage_top10", "dims_for_90pct", "mean_cosine", "is_isotropic")
    return markdown_table([{"metric": k, **{label: m[k] for label, m in metrics.items()}} for k in shown])
