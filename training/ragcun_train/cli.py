"""``ragcun-train``: train a Gaussian (isotropic, L2-ranked) embedding model; ``ragcun-train --help`` for the options."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from typing import Any, NoReturn

from ragcun_train.config import HEADS, INITS, TrainConfig
from ragcun_train.data import FORMATS
from ragcun_train.objectives import COMPONENTS, PRESETS

CLOSED_FORM_HELP = {
    "similarity": "no training: rotation and one scale fitted to the corpus; every ranking stays exactly as it was",
    "similarity-centred": "no training: as similarity, centred on the corpus mean; dense rankings stay, "
                          "fixed-floor hybrid rankings move",
}

DESCRIPTION = """\
Train a ragcun model: a sentence-transformers encoder with a Gaussian head whose embeddings follow
N(0, I) and are ranked by Euclidean distance.

DATA is a file or folder; its kind is detected (or forced with --format):
  pairs   JSONL / CSV / TSV with query (or anchor), positive and optional negative columns
          (a headerless TSV is read as query, positive[, negative], like MS MARCO triples)
  beir    a BEIR folder (corpus.jsonl, queries.jsonl, qrels/train.tsv): pairs from the qrels
  corpus  unlabelled documents: a .txt (one per line), a .jsonl with "text" (and "title"), a BEIR
          folder without train qrels, or a folder of .txt/.md files; by default not trained on but
          fitted in closed form (--objective similarity: the ranking stays exactly as it was); an opt-in
          training objective trains on two disjoint views of each document (title and body, or two halves)
With no DATA, trains on the bundled demo (BEIR SciFact training pairs) and prints nDCG@10 and
isotropy before and after on its held-out test queries.

Objectives (λ of each loss component; override any with --lambda-*):
""" + "\n".join(f"  {name:<{max(map(len, PRESETS)) + 1}}{', '.join(f'{k} {v}' for k, v in w.items()) or CLOSED_FORM_HELP[name]}"
               for name, w in PRESETS.items())

EPILOG = """\
Outputs in --output: the model (loads with ragcun.GaussianEncoder(DIR), SentenceTransformer(DIR) and
llama_index.embeddings.ragcun.GaussianEmbedding(model_name=DIR)), training_report.json, loss_curves.png,
isotropy_before_after.png, a model card (README.md: base, head, objective, data, before/after
table, how to load) and checkpoints/. An --output that a previous run wrote into is refused unless
--overwrite (start afresh) or --resume (continue it) is given.
Runs under `torchrun --nproc_per_node=N ragcun-train ...` (gloo on CPU)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (its usage is long; ``--help`` shows it)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def config_defaults() -> dict[str, Any]:
    """Each flag's default: its :class:`TrainConfig` field's, so the command and ``train(...)`` never disagree."""
    return {f.name: f.default for f in fields(TrainConfig)}


def build_parser() -> argparse.ArgumentParser:
    """The ``ragcun-train`` argument parser."""
    p = _Parser(prog="ragcun-train", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", help="training data file or folder (default: the bundled demo)")
    p.add_argument("--format", choices=FORMATS, help="input kind (default: detected)")
    p.add_argument("--eval-data", metavar="DIR", help="BEIR folder to report nDCG@10 on before/after (default: DATA if it is a BEIR folder)")
    p.add_argument("--eval-split", metavar="SPLIT", help="qrels split of the evaluation folder (default: dev, else test)")
    p.add_argument("--model", metavar="NAME_OR_PATH", help="base sentence-transformers model (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--output", metavar="DIR", help="output model folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace the model and checkpoints a previous run left in --output")
    p.add_argument("--objective", choices=tuple(PRESETS),
                   help="loss preset (default: gaussian-rag for labelled data; similarity for a --format corpus: no training, "
                        "a closed-form similarity transform that adapts the isotropy statistics and leaves every ranking "
                        "unchanged); isotropy-only: SIGReg training of the head on a corpus (reorders the ranking; opt-in, "
                        "measured in the README); distil: label-free distillation of the hybrid "
                        "L2 + BM25 ranking into the encoder (a corpus only; trains the top layers on CPU; opt-in)")
    p.add_argument("--init", choices=INITS,
                   help="head initialisation (default: identity for a linear or residual head — L2 ranks as the base's cosine; random for mlp)")
    p.add_argument("--head", choices=HEADS, help="Gaussian head (default: %(default)s)")
    p.add_argument("--output-dim", type=int, metavar="D", help="embedding dimension (default: the base model's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--freeze-base", dest="freeze_base", action="store_true",
                   help="train only the head on cached base embeddings (default on CPU)")
    g.add_argument("--no-freeze-base", dest="freeze_base", action="store_false",
                   help="full fine-tuning with SentenceTransformerTrainer (default on GPU)")
    p.add_argument("--freeze-layers", type=int, metavar="N", help="full fine-tuning: keep the first N transformer layers fixed (default: 0; with --objective distil on CPU, all but the top 2)")
    p.add_argument("--epochs", type=int, help="epochs (default: 20 frozen, 1 full)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, help="rows per step (default: %(default)s)")
    p.add_argument("--lr", type=float, help="peak learning rate, decayed linearly (default: 1e-3 frozen, 2e-5 full)")
    for c in COMPONENTS:
        p.add_argument(f"--lambda-{c}", type=float, metavar="λ", help=f"weight of the {c} loss (default: the objective's)")
    p.add_argument("--temperature", type=float, help="InfoNCE temperature τ on squared L2 distances (default: 0.1 × dimension)")
    p.add_argument("--num-slices", type=int, help="SIGReg random projections per step (default: %(default)s)")
    p.add_argument("--corpus-negatives", type=int, metavar="M",
                   help="frozen mode: rank each query against up to M cached corpus documents (default: %(default)s; 0 = in-batch only)")
    p.add_argument("--isotropy-sample", type=int, metavar="N", help="documents measured by the isotropy report (default: %(default)s)")
    p.add_argument("--no-recentre", dest="recentre", action="store_false",
                   help="keep the trained head's mean and scale (default: re-fit them on the training corpus, which changes no L2 ranking)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="train on every labelled query (default: hold back a tenth of them, at most 500, to fit the "
                        "model's relevance calibrator, P(relevant) from L2 distance, which the stores use as the score)")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same model (default: %(default)s)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--cache-dir", metavar="DIR", help="base-embedding cache, shared with ragcun-eval (default: $RAGCUN_CACHE_DIR or ~/.cache/ragcun/embeddings)")
    p.add_argument("--save-steps", type=int, help="checkpoint every this many steps (default: %(default)s)")
    p.add_argument("--eval-steps", type=int, help="full fine-tuning: run the isotropy and L2 retrieval evaluators every this many steps")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="resume from the newest checkpoint in OUTPUT/checkpoints, or from CHECKPOINT")
    p.add_argument("--no-progress", dest="show_progress", action="store_false", help="hide progress bars")
    p.set_defaults(**config_defaults())
    return p


def _error(exc: BaseException) -> int:
    """Print ``exc`` as one ``ragcun-train: error:`` line; the exit status of a refused run."""
    print(f"ragcun-train: error: {exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ragcun-train``; returns the exit status (2 for bad arguments or data).

    Arguments are parsed and checked before torch or any model is imported.
    """
    args = vars(build_parser().parse_args(argv))
    from importlib.util import find_spec

    missing = [m for m in ("datasets", "accelerate", "matplotlib") if find_spec(m) is None]
    if missing:
        return _error(f"{', '.join(missing)} not installed: pip install \"ragcun[train]\"")
    options = {k: v for k, v in args.items() if k in TrainConfig.field_names()}
    try:
        TrainConfig(**options).check()
    except (OSError, ValueError) as exc:
        return _error(exc)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ragcun_train.api import train
    from ragcun_train.report import summary_lines

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "sentence_transformers", "transformers", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = train(**options)
    except (OSError, ValueError, RuntimeError) as exc:
        return _error(exc)
    if result.report:
        print("\n".join(summary_lines(result.report)))
        print(f"model, model card, training_report.json and plots written to {result.output}/ in {result.report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
