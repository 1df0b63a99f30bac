"""``TrainConfig``: every option of a ``ragcun-train`` run, and the checks made before anything heavy loads.

Light to import (no torch, no sentence-transformers): ``ragcun-train`` parses and checks its
arguments with this module alone, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ragcun.model.choices import HEADS, INITS
from ragcun_train.data import FORMATS, check_format
from ragcun_train.objectives import CLOSED_FORM_OBJECTIVES, ENCODER_OBJECTIVES, PRESETS, objective_weights

DEMO_DIR = Path(__file__).resolve().parent / "demo"
CHECKPOINT_DIR = "checkpoints"
# What a finished or interrupted run leaves in its output folder.
RUN_ENTRIES = ("modules.json", "training_report.json", CHECKPOINT_DIR)

_AT_LEAST_ONE = ("batch_size", "num_slices", "save_steps", "epochs", "max_steps", "output_dim", "eval_steps")
_AT_LEAST_TWO = ("isotropy_sample",)
_AT_LEAST_ZERO = ("freeze_layers", "corpus_negatives")
_POSITIVE_REALS = ("lr", "temperature")
LABELLED_OBJECTIVE = "gaussian-rag"
"""The default objective for labelled data (pairs, BEIR folders)."""
CORPUS_OBJECTIVE = "similarity"
"""The default objective for a label-free corpus (``--format corpus``): no training, a similarity transform of the
outputs fitted to the corpus (:mod:`ragcun_train.similarity`), which adapts their mean, axes and scale and leaves
every L2 ranking exactly as it was. Every objective that trains on a corpus (``isotropy-only``, the title/half ->
body views, ``distil``) reorders the ranking and is opt-in; measured in the README's training section and
docs/benchmarks.md."""
_CHOICES = {"format": FORMATS, "objective": tuple(PRESETS), "head": HEADS, "init": INITS}


def option(name: str) -> str:
    """The command-line flag of a :class:`TrainConfig` field (``batch_size`` → ``--batch-size``)."""
    return "--" + name.replace("_", "-")


@dataclass
class TrainConfig:
    """Every option of a run; the CLI flags map one to one (``--batch-size`` → ``batch_size``)."""

    data: str | None = None
    format: str = "auto"
    eval_data: str | None = None
    eval_split: str | None = None
    model: str | None = None
    output: str = "ragcun-model"
    overwrite: bool = False
    objective: str | None = None
    init: str | None = None
    head: str = "linear"
    output_dim: int | None = None
    freeze_base: bool | None = None
    freeze_layers: int | None = None
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 64
    lr: float | None = None
    lambda_contrastive: float | None = None
    lambda_isotropy: float | None = None
    lambda_predictive: float | None = None
    lambda_covariance: float | None = None
    lambda_margin: float | None = None
    lambda_distil: float | None = None
    temperature: float | None = None
    num_slices: int = 256
    corpus_negatives: int = 8192
    isotropy_sample: int = 2048
    recentre: bool = True
    calibrate: bool = True
    seed: int = 42
    device: str | None = None
    cache_dir: str | None = None
    save_steps: int = 200
    eval_steps: int | None = None
    resume: bool | str = False
    show_progress: bool = True

    @classmethod
    def field_names(cls) -> set[str]:
        """The names of every option."""
        return {f.name for f in fields(cls)}

    def resolved_objective(self) -> str:
        """``objective``, or the default for the data: :data:`CORPUS_OBJECTIVE` for a label-free corpus,
        :data:`LABELLED_OBJECTIVE` for labelled data (and the bundled demo)."""
        if self.objective is not None:
            return self.objective
        corpus = self.data is not None and check_format(self.data, self.format) == "corpus"
        return CORPUS_OBJECTIVE if corpus else LABELLED_OBJECTIVE

    def weights(self) -> dict[str, float]:
        """The λ of each loss component: the objective's preset with the ``lambda_*`` overrides."""
        overrides = {k[len("lambda_"):]: v for k, v in asdict(self).items() if k.startswith("lambda_")}
        return objective_weights(self.resolved_objective(), overrides)

    def check(self) -> None:
        """Raise ``ValueError`` (or ``FileNotFoundError``) naming the first bad option; reads no model and no data."""
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ValueError(f"{option(name)}: {value!r} is not one of {', '.join(choices)}")
        for names, low in ((_AT_LEAST_ONE, 1), (_AT_LEAST_TWO, 2), (_AT_LEAST_ZERO, 0)):
            for name in names:
                value = getattr(self, name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                    raise ValueError(f"{option(name)} must be an integer >= {low}, got {value!r}")
        for name in _POSITIVE_REALS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{option(name)} must be a finite number > 0, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be an integer from 0 to 2**32 - 1, got {self.seed!r}")
        try:
            self.weights()
        except ValueError as exc:
            raise ValueError(f"--objective/--lambda-*: {exc}") from None
        if self.resolved_objective() in CLOSED_FORM_OBJECTIVES and self.init is not None:
            raise ValueError(f"--objective {self.resolved_objective()} keeps the model's head and its ranking as they are; "
                             "--init (a refit that changes them) does not apply")
        if self.objective in (*ENCODER_OBJECTIVES, *CLOSED_FORM_OBJECTIVES):
            if self.freeze_base and self.objective in ENCODER_OBJECTIVES:
                raise ValueError(f"--objective {self.objective} trains the encoder: it cannot run with --freeze-base "
                                 "(a frozen linear head measured worse than the base; see docs/benchmarks.md)")
            if self.data is not None and check_format(self.data, self.format) != "corpus":
                raise ValueError(f"--objective {self.objective} fits unlabelled documents: give a corpus "
                                 f"(--format corpus), not {check_format(self.data, self.format)} data")
        if self.data is not None:
            check_format(self.data, self.format)
        if self.eval_data is not None and not Path(self.eval_data).is_dir():
            raise FileNotFoundError(f"--eval-data: {self.eval_data} is not a folder")
        if isinstance(self.resume, str) and self.resume not in ("true", "latest") and not Path(self.resume).is_dir():
            raise FileNotFoundError(f"--resume: checkpoint {self.resume} does not exist")
        self.check_output()

    def check_output(self) -> None:
        """Refuse an ``output`` that would silently replace a trained model or mix with unrelated files.

        A new or empty folder is fine; a folder a previous run wrote into needs ``overwrite`` (start
        afresh) or ``resume`` (continue from its checkpoints); any other non-empty folder is refused.
        """
        out = Path(self.output)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--output {out} is a file; give a folder")
        if self.overwrite and self.resume:
            raise ValueError("--overwrite starts afresh and --resume continues the previous run: give one of them")
        if not out.is_dir() or not any(out.iterdir()):
            return
        previous = [name for name in RUN_ENTRIES if (out / name).exists()]
        if not previous:
            raise ValueError(f"--output {out} is a non-empty folder that no ragcun-train run wrote; give a new or empty folder")
        if not (self.overwrite or self.resume):
            raise ValueError(f"--output {out} already holds a previous run ({', '.join(previous)}); "
                             "pass --overwrite to replace it or --resume to continue it")
