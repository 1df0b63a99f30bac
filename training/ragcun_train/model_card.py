"""The model card (``README.md``) that ``ragcun-train`` writes beside a trained model.

It replaces the base model's card, whose advice (normalise the embeddings, compare by cosine)
is wrong for a Gaussian model: here outputs are ranked by Euclidean distance, as they come.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragcun_train.report import comparison_rows, fusion_line
from ragcun_train.similarity import describe_transform

CARD_FILE = "README.md"


def _table(report: dict[str, Any]) -> list[str]:
    lines = ["| | nDCG@10 | SIGReg (≈1 for N(0, I)) | isotropic | eff. rank / dim |", "|---|---|---|---|---|"]
    for name, r in comparison_rows(report):
        iso = r.get("isotropy") or {}
        ndcg = f"{r['ndcg@10']:.4f}" if r.get("ndcg@10") is not None else "–"
        sig = f"{iso['sigreg']:.2f}" if iso else "–"
        erank = f"{iso['effective_rank']:.0f} / {iso['dim']}" if iso else "–"
        lines.append(f"| {name} | {ndcg} | {sig} | {iso.get('is_isotropic', '–')} | {erank} |")
    return lines


def _transform_lines(report: dict[str, Any]) -> list[str]:
    """The card's lines on a closed-form similarity transform (``--objective similarity``), if the run made one."""
    t = report.get("transform")
    if not t:
        return []
    what, ranking = describe_transform(t)
    return [f"- objective: {report['config']['objective']} (closed form: no loss, no training step)",
            f"- no training: a similarity transform fitted to the corpus: {what}; relevance calibrator {t['calibrator']}",
            f"- **ranking**: {ranking} (isotropy: the table below)"]


def model_card(report: dict[str, Any], ragcun_config: dict[str, Any]) -> str:
    """The Markdown card of a model trained as ``report`` (``training_report.json``) describes."""
    cfg, data, ev = report["config"], report["data"], report.get("eval")
    base = ragcun_config["base_model"]
    weights = ", ".join(f"{k} λ={v:g}" for k, v in cfg["weights"].items() if v)
    steps = report["steps"][-1]["step"] if report.get("steps") else 0
    frozen_layers = cfg.get("freeze_layers") or 0
    mode = ("frozen base: only the head trained, on cached base embeddings" if cfg["freeze_base"] else
            "full fine-tuning" + (f" (first {frozen_layers} transformer layers frozen)" if frozen_layers else ""))
    skipped = ", ".join(f"{n} {reason}" for reason, n in data["skipped"].items()) or "none"
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [ragcun, gaussian-embeddings, sentence-transformers, feature-extraction]",
        *([f"base_model: {base}"] if not Path(base).exists() else []),  # a hub id, not a local folder
        "---",
        "",
        "# ragcun Gaussian embedding model",
        "",
        f"Trained with `ragcun-train` on **{base}**. Its embeddings are meant to follow an isotropic",
        "Gaussian N(0, I) and are ranked by **Euclidean (L2) distance**: the outputs must NOT be",
        "normalised (no unit-length rescaling, no cosine similarity), or their norm and the L2 ranking are lost.",
        "",
        "## Model",
        "",
        f"- base model: {base}",
        f"- head: {ragcun_config['head']} ({ragcun_config['input_dim']} → {ragcun_config['output_dim']} dimensions), "
        f"initialised as {ragcun_config['init']}",
        *(_transform_lines(report) or [
            f"- objective: {cfg['objective']} ({weights}); temperature {cfg['temperature'] or '0.1 × dimension'}",
            f"- training: {mode}; {steps} steps, batch size {cfg['batch_size']}, learning rate {cfg['lr']:g}, seed {cfg['seed']}",
            f"- re-centred on the training corpus: {'yes' if report.get('recentred') else 'no'}"]),
        "- relevance calibrator (`relevance_calibrator.json`, the stores' P(relevant) score): "
        + (f"fitted on {report['calibrator']['fitted_on']}; hybrid hits scored "
           + ("with their BM25 share too" if report["calibrator"].get("hybrid") else "by the distance alone")
           if report.get("calibrator") else "none (the stores score by the distance law)"),
        "- hybrid fusion (`ragcun_fusion.json`, the stores' dense weight unless `alpha=` is set): "
        + (f"fitted, {fusion_line(report['fusion'])}" if report.get("fusion") else "none (the stores' default weight)"),
        "",
        "## Data",
        "",
        f"- training data: {data['source']} ({data['kind']}): {data['rows']} training rows, {data['corpus']} corpus documents; "
        f"skipped: {skipped}",
    ]
    if ev:
        lines.append(f"- evaluation: {ev['source']} (split {ev['split']}: {ev['queries']} queries, {ev['docs']} documents)")
    lines += ["", "## Measured before and after training", "", *_table(report), "",
              "`base (cosine)` is the base model ranked by cosine; `before` and `after` rank this model's outputs by L2 "
              "distance. Every number is in `training_report.json`.", ""]
    where = cfg["output"]
    lines += [
        "## How to load",
        "",
        "```python",
        "from ragcun import GaussianEncoder",
        f'model = GaussianEncoder("{where}")',
        'vectors = model.encode(["a text"])      # as they come: rank by L2 distance',
        "",
        "from sentence_transformers import SentenceTransformer",
        f'model = SentenceTransformer("{where}")  # similarity_fn_name is "euclidean"',
        "",
        "from llama_index.embeddings.ragcun import GaussianEmbedding",
        f'embed_model = GaussianEmbedding(model_name="{where}")',
        "",
        "from langchain_ragcun import GaussianEmbeddings",
        f'embeddings = GaussianEmbeddings(model_name="{where}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(folder: Path, report: dict[str, Any], ragcun_config: dict[str, Any]) -> None:
    """Write :func:`model_card` as ``folder/README.md``, over whatever card the model save left there."""
    (folder / CARD_FILE).write_text(model_card(report, ragcun_config), encoding="utf-8")
