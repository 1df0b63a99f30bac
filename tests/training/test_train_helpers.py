"""ragcun-train's shared helpers: flag defaults from TrainConfig, checkpoint lookup, distributed lookups outside a process group."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from ragcun.stats import distributed
from ragcun_train.checkpoint import STATE_JSON, latest_checkpoint, list_checkpoints
from ragcun_train.cli import build_parser
from ragcun_train.config import TrainConfig


def test_every_flag_defaults_to_its_train_config_field():
    assert vars(build_parser().parse_args([])) == asdict(TrainConfig())


def test_latest_checkpoint_of_each_mode_skips_incomplete_and_foreign_entries(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None and latest_checkpoint(tmp_path, frozen=False) is None
    for name in ("step-2", "step-10", "step-11", ".step-12.tmp", "step-x", "checkpoint-5", "checkpoint-40", "checkpoint-x"):
        (tmp_path / name).mkdir()
    for name in ("step-2", "step-10", ".step-12.tmp", "step-x"):
        (tmp_path / name / STATE_JSON).write_text("{}")
    (tmp_path / "checkpoint-99").write_text("a file, not a checkpoint")
    assert list_checkpoints(tmp_path) == [tmp_path / "step-2", tmp_path / "step-10"]  # step-11 has no state.json yet
    assert latest_checkpoint(tmp_path) == tmp_path / "step-10"
    assert list_checkpoints(tmp_path, frozen=False) == [tmp_path / "checkpoint-5", tmp_path / "checkpoint-40"]
    assert latest_checkpoint(tmp_path, frozen=False) == tmp_path / "checkpoint-40"


def test_distributed_lookups_outside_a_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    distributed.barrier()  # nothing to wait for
    distributed.init_from_env("cpu")  # not launched by torchrun: joins nothing
    assert not distributed.is_initialized()


def test_default_objective_follows_the_data(tmp_path) -> None:
    """Label-free corpora default to similarity (a closed-form fit that keeps every ranking); labelled data to gaussian-rag."""
    from ragcun_train.config import CORPUS_OBJECTIVE, LABELLED_OBJECTIVE, TrainConfig

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"text": "A first document about tides and the Moon."}\n')
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "tides?", "positive": "The Moon causes tides."}\n')
    assert (CORPUS_OBJECTIVE, LABELLED_OBJECTIVE) == ("similarity", "gaussian-rag")
    assert TrainConfig(data=str(corpus)).resolved_objective() == CORPUS_OBJECTIVE
    assert TrainConfig(data=str(pairs)).resolved_objective() == LABELLED_OBJECTIVE
    assert TrainConfig().resolved_objective() == LABELLED_OBJECTIVE  # the bundled demo is labelled
    assert TrainConfig(data=str(corpus), objective="distil").resolved_objective() == "distil"
    assert TrainConfig(data=str(corpus)).weights() == dict.fromkeys(("contrastive", "isotropy", "predictive", "covariance",
                                                                      "margin", "distil"), 0.0)  # trains nothing
    assert TrainConfig(data=str(corpus), objective="isotropy-only").weights()["isotropy"] == 1.0  # the opt-in training
    with pytest.raises(ValueError, match="'similarity' trains nothing.*isotropy"):
        TrainConfig(data=str(corpus), lambda_isotropy=0.5).check()
    with pytest.raises(ValueError, match="keeps the model's head and its ranking as they are; --init"):
        TrainConfig(data=str(corpus), init="whitening").check()
    with pytest.raises(ValueError, match="--objective similarity fits unlabelled documents: give a corpus"):
        TrainConfig(data=str(pairs), objective="similarity").check()
