"""Writing results: JSON, CSV and Markdown tables, the retrieval bar chart and the reliability diagram."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ragcun_eval.claims import ClaimResult  # noqa: E402
from ragcun_eval.metrics import METRICS  # noqa: E402


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (floats to 4 decimals)."""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_table(rows: Sequence[dict], out_dir: Path, stem: str) -> str:
    """Write ``<stem>.json`` (the list of rows), ``.csv`` and ``.md`` into ``out_dir``; return the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(list(rows), indent=1, allow_nan=True))
    with (out_dir / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    (out_dir / f"{stem}.md").write_text(table + "\n")
    return table


def retrieval_chart(rows: Sequence[dict], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per dataset/model/geometry row."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(METRICS) + 0.4 * len(rows)), 4.2))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        xs = [m + (i - (len(rows) - 1) / 2) * width for m in range(len(METRICS))]
        bars = ax.bar(xs, [r[m] for m in METRICS], width, label=f"{r['dataset']} · {Path(r['model']).name or r['model']}:{r['geometry']}")
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(METRICS)), METRICS)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("score")
    ax.set_title("BEIR retrieval")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, len(rows)))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_diagram(results: Sequence[ClaimResult], path: Path) -> None:
    """Observed relevance rate against mean probabilistic score per bin, one curve per model, with bin counts."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    width = 0.09 / len(results)
    for i, r in enumerate(results):
        bins = r.reliability
        name = f"{Path(r.model).name or r.model}:{r.geometry}"
        ax.plot([b["score"] for b in bins], [b["relevant"] for b in bins], "o-", label=f"{name} (ECE {r.ece:.3f})")
        hist.bar([b["lo"] + 0.005 + (i + 0.5) * width for b in bins], [b["count"] for b in bins], width=width, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="fraction relevant (qrels)",
           title=f"Reliability of the relevance score, top-10 results ({results[0].dataset})")
    ax.legend(fontsize=7)
    hist.set(xlabel="relevance score (bin)", ylabel="pairs", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
