"""Quality benchmark: ``ragcun-eval`` §1 (retrieval) and §2 (claims) on every BEIR folder under ../shared/data/beir/.

Models per dataset: the bundled all-MiniLM-L6-v2 by cosine, the same ZCA-whitened on the corpus
(whitening only), and, when ``ragcun_train`` is importable and the folder has ``qrels/train.tsv``,
one Gaussian model per objective preset trained by ``ragcun_train.train`` on the train qrels with
the base frozen. Writes the tables and PNGs into ``--out`` and the summary into docs/benchmarks.md.

    HF_HUB_OFFLINE=1 python benchmarks/quality.py            # everything
    HF_HUB_OFFLINE=1 python benchmarks/quality.py --no-train # base model only
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ragcun_eval.beir import BeirDataset, find_beir_dirs, load_beir
from ragcun_eval.cache import EmbeddingCache
from ragcun_eval.claims import ClaimResult, verdict_lines
from ragcun_eval.cli import claims_outputs, retrieval_outputs, run_all
from ragcun_eval.models import ModelSpec, parse_model_spec
from ragcun_eval.report import markdown_table

REPO = Path(__file__).resolve().parents[1]
BASELINES = ("bundled:cosine", "bundled:whitened")


def trainer_presets() -> tuple[str, ...] | None:
    """The objective presets of ``ragcun_train``, or ``None`` when it cannot be imported."""
    try:
        from ragcun_train.objectives import PRESETS
    except ImportError:
        return None
    return tuple(PRESETS)


def prefill_trainer_cache(data: BeirDataset, cache: EmbeddingCache) -> None:
    """Hand ragcun_train the bundled base's corpus and query embeddings already cached here (unit length,
    as its cache stores them), so training does not encode the corpus a second time. Skipped when the
    bundled model has non-empty prompts (then the two encodes would differ)."""
    from ragcun import GaussianEncoder
    from ragcun_train.cache import DEFAULT_CACHE_DIR, EmbeddingCache as TrainCache, model_fingerprint

    encoder = GaussianEncoder()
    if any(encoder.prompts.values()):
        return
    train_cache = TrainCache(DEFAULT_CACHE_DIR, model_fingerprint(encoder))
    spec = parse_model_spec("bundled:cosine")
    for texts, role in ((data.doc_texts, "document"), (list(data.queries.values()), "query")):
        todo = set(train_cache.missing(texts))
        if not todo:
            continue
        raw = cache.embed(spec, texts, role)
        first: dict[str, int] = {}
        for i, text in enumerate(texts):
            if text in todo:
                first.setdefault(text, i)
        vecs = raw[list(first.values())]
        train_cache.put(list(first), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))


def train_models(folder: Path, data: BeirDataset, cache: EmbeddingCache, out: Path, presets: tuple[str, ...],
                 epochs: int | None, notes: list[str]) -> list[ModelSpec]:
    """Train one frozen-base Gaussian model per preset on ``folder``'s train qrels (a model already under
    ``out`` is reused); their specs. Appends what happened to ``notes``."""
    from ragcun_train import train

    prefill_trainer_cache(data, cache)
    specs = []
    for preset in presets:
        target = out / "models" / f"{data.name}-{preset}"
        if not (target / "config_sentence_transformers.json").is_file():
            t0 = time.time()
            train(folder, output=str(target), objective=preset, freeze_base=True, eval_data=str(folder),
                  eval_split="test", epochs=epochs, show_progress=False)
            notes.append(f"- trained {target.name} in {time.time() - t0:.0f} s")
        else:
            notes.append(f"- reused {target.name} (already trained; delete its folder under --out to retrain)")
        specs.append(parse_model_spec(str(target)))
    return specs


def _short(row: dict) -> dict:
    """``row`` with a model path shortened to its folder name (trained models live under ``--out``)."""
    return {**row, "model": Path(row["model"]).name if "/" in row["model"] else row["model"]}


def write_doc(path: Path, command: str, model_dir: Path, rows: list[dict], claims: list[ClaimResult], notes: list[str], seconds: float) -> None:
    """docs/benchmarks.md: how it was run, the retrieval table, the claims with verdicts, and the losses."""
    claim_cols = ["dataset", "model", "geometry", "gap", "auc", "cohens_d", "separation", "ece", "calibration_auc",
                  "calibration", "norm_spearman", "norm_auroc", "norm"]
    losses = []
    for r in rows:
        ref = next(b for b in rows if b["dataset"] == r["dataset"] and b["model"] == "bundled" and b["geometry"] == "cosine")
        if r is not ref:
            delta = r["ndcg@10"] - ref["ndcg@10"]
            losses.append(f"- {r['dataset']}, {r['model']}:{r['geometry']}: nDCG@10 {r['ndcg@10']:.4f} vs "
                          f"{ref['ndcg@10']:.4f} for bundled cosine ({delta / ref['ndcg@10']:+.1%}) — "
                          + ("ragcun loses" if delta < 0 else "ragcun wins"))
    text = "\n".join([
        "# Quality benchmark", "",
        "Generated by `benchmarks/quality.py`; do not edit by hand. Metrics: BEIR / trec_eval definitions on the test qrels "
        "(see `training/ragcun_eval/metrics.py`); claims and their verdict rules: `training/ragcun_eval/claims.py`.", "",
        "## Commands", "", "```bash", command, "```", "",
        "The same figures for any folder and models with the CLI:", "", "```bash",
        "ragcun-eval claims ../shared/data/beir/scifact --model bundled:cosine --model bundled:whitened "
        f"--model {model_dir}/scifact-gaussian-rag --output out/scifact", "```", "",
        "`bundled:whitened` is ZCA whitening fitted on the corpus being indexed (unit-length base embeddings), ranked by L2. "
        "Trained models: `ragcun_train.train(folder, objective=PRESET, freeze_base=True)` on the folder's train qrels "
        "(defaults otherwise), ranked by L2. They are trained and tested on the same corpus (train vs test queries): "
        "in-domain figures, an upper bound for a user without labels.", "",
        "## Retrieval (§1)", "", markdown_table(rows), "",
        "## Against the baseline (bundled cosine)", "", *(losses or ["- only the baseline ran"]), "",
        "## The seed's claims (§2)", "",
        "Separation: reference = bundled cosine; held when both AUC and Cohen's d beat it. Calibration: held when ECE ≤ 0.1 "
        "and the score ranks relevant above irrelevant among the top 10 (AUC > 0.5, p < 0.05). Norm: held when "
        "Spearman(norm, nDCG@10) > 0 (p < 0.05) and AUROC(norm → top-1 relevant) > 0.5 (p < 0.05).", "",
        markdown_table([_short({c: r.row()[c] for c in claim_cols}) for r in claims]), "",
        "## Notes", "", *notes, f"- wall time of this run: {seconds / 60:.1f} min (embeddings come from the ragcun-eval cache when present)", "",
    ])
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir-root", type=Path, default=REPO.parent / "shared" / "data" / "beir")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "quality")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--cache-dir", type=Path, help="ragcun-eval embedding cache (default as the CLI)")
    parser.add_argument("--presets", nargs="*", help="objective presets to train (default: all of ragcun_train)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: ragcun_train's)")
    parser.add_argument("--no-train", action="store_true", help="evaluate the base model only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    folders = find_beir_dirs(args.beir_root)
    if not folders:
        print(f"no BEIR folder under {args.beir_root}", file=sys.stderr)
        return 2
    available = trainer_presets()
    presets = () if args.no_train else tuple(args.presets) if args.presets else (available or ())
    notes = []
    if available is None and not args.no_train:
        notes.append("- ragcun_train is not importable: only the base model and whitening were measured")
    cache = EmbeddingCache(args.cache_dir)
    runs, datasets = [], []
    for folder in folders:
        data = load_beir(folder)
        specs = [parse_model_spec(s) for s in BASELINES]
        if presets and available is not None:
            if (folder / "qrels" / "train.tsv").is_file():
                specs += train_models(folder, data, cache, args.out, presets, args.epochs, notes)
            else:
                notes.append(f"- {data.name}: no qrels/train.tsv, no Gaussian model trained")
        datasets.append(data)
        runs += run_all([data], specs, cache)
    print(retrieval_outputs(runs, args.out))
    claims = claims_outputs(runs, datasets, args.out)
    print("\n".join(verdict_lines(claims)))
    command = "HF_HUB_OFFLINE=1 python benchmarks/quality.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    model_dir = (args.out / "models").resolve()
    model_dir = model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir
    write_doc(args.doc, command.strip(), model_dir, [_short(r.row()) for r in runs], claims, notes, time.time() - t0)
    print(f"wrote {args.doc} and {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
