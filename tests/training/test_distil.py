"""--objective distil: pseudo-queries, the hybrid teacher, mined triplets, the MarginMSE loss, and a tiny end-to-end run."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from ragcun.losses import EuclideanMarginMSELoss, GaussianRAGLoss
from ragcun_train import train
from ragcun_train.cli import main
from ragcun_train.config import TrainConfig
from ragcun_train.distil import (
    HybridTeacher,
    TeacherRanking,
    distil_set,
    fit_margin_scale,
    mine_triplets,
    pseudo_queries,
    split_sentences,
)

WORDS = ("protein cell gene tumour virus immune brain heart liver kidney insulin dopamine neuron receptor "
         "enzyme plasma membrane vaccine antibody mutation").split()


def _doc(rng: random.Random, n_sentences: int = 3) -> str:
    return " ".join(" ".join(rng.choices(WORDS, k=8)).capitalize() + "." for _ in range(n_sentences))


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """40 documents of 3 eight-word sentences, half of them with a title."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("distil") / "corpus.jsonl"
    rows = [{"title": " ".join(rng.choices(WORDS, k=6)) if i % 2 else "", "text": _doc(rng)} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- pseudo-queries ----------------------------------------------------------------------------------


def test_pseudo_queries_cut_sentences_and_titles_and_remove_them_from_the_rest():
    docs = ["First sentence has six words here. Second sentence also has six words. Third one is here too, six."]
    qs = pseudo_queries(docs, ["A title of at least five words"], per_doc=4)
    kinds = {q.kind for q in qs}
    assert kinds == {"sentence", "title"} and all(q.doc == 0 for q in qs)
    for q in qs:
        assert q.text not in q.rest and q.rest
    assert split_sentences("One. Two!  Three?") == ["One.", "Two!", "Three?"]


def test_pseudo_queries_are_deduplicated_across_documents_and_capped():
    same = "This exact sentence appears in two documents. " + "Some other words follow to keep a rest."
    qs = pseudo_queries([same, same], per_doc=2, min_words=4, min_rest_words=3)
    texts = [q.text.lower() for q in qs]
    assert len(texts) == len(set(texts))
    many = [f"Document number {i} has a sentence of words. And a second sentence for its rest here." for i in range(50)]
    assert len(pseudo_queries(many, max_queries=7, min_words=4)) == 7


@pytest.mark.parametrize("kwargs, message", [
    (dict(texts="one string"), "not one string"),
    (dict(texts=["ok text", 3]), "document 1 is a int"),
    (dict(texts=["a"], titles=["a", "b"]), "2 titles for 1 documents"),
    (dict(texts=["a"], kinds=("question",)), "kinds must be"),
    (dict(texts=["a"], per_doc=0), "per_doc must be an integer >= 1"),
    (dict(texts=["a"], min_words=9, max_words=3), "min_words 9 > max_words 3"),
    (dict(texts=["too short"]), "no pseudo-query could be cut"),
])
def test_pseudo_queries_refuse_bad_input_clearly(kwargs, message):
    texts = kwargs.pop("texts")
    with pytest.raises(ValueError, match=message):
        pseudo_queries(texts, **kwargs)


# -- teacher and triplets ----------------------------------------------------------------------------


def test_teacher_fuses_bm25_and_l2_over_the_candidates():
    texts = ["insulin receptor signalling", "dopamine neuron firing", "kidney filtration rate"]
    vectors = np.eye(3, dtype=np.float32)
    teacher = HybridTeacher(texts, vectors, alpha=0.5, candidates=3)
    # the dense side prefers document 1, the lexical side document 0: both lie in [0, 1], the best first
    (r,) = teacher.rank(["insulin receptor"], np.array([[0.6, 0.8, 0.0]]))
    assert set(r.docs.tolist()) == {0, 1, 2} and r.scores[0] >= r.scores[-1] and 0 <= r.scores.min() <= r.scores.max() <= 1
    assert r.docs[0] == 0  # BM25 1.0 * 0.5 + dense 0.5·(min–max) beats dense alone
    with pytest.raises(ValueError, match="one vector per text"):
        HybridTeacher(texts, vectors[:2])
    with pytest.raises(ValueError, match="2 query texts but 1 vectors"):
        teacher.rank(["a", "b"], vectors[:1])


def test_mined_triplets_skip_the_source_document():
    qs = pseudo_queries(["Sentence one of the source document here. And another sentence to keep as rest."], min_words=4,
                        min_rest_words=3)
    ranks = [TeacherRanking(docs=np.array([0, 5, 6, 7, 8]), scores=np.array([1.0, 0.8, 0.6, 0.5, 0.1]))]
    ict = mine_triplets(qs[:1], ranks, positives="ict", negatives_from=1, seed=0)
    both = mine_triplets(qs[:1], ranks, positives="both", negatives_from=1, seed=0)
    assert len(ict) == 1 and ict[0].positive is None and ict[0].negative in (6, 7, 8)
    assert ict[0].margin == pytest.approx(1.0 - dict(zip([5, 6, 7, 8], [0.8, 0.6, 0.5, 0.1]))[ict[0].negative])
    assert {t.positive for t in both} == {None, 5} and all(t.negative != 0 for t in both)
    with pytest.raises(ValueError, match="positives must be one of"):
        mine_triplets(qs[:1], ranks, positives="random")


def test_distil_set_has_a_label_per_row(corpus_file):
    rows = [json.loads(line) for line in corpus_file.read_text().splitlines()]
    titles, bodies = [r["title"] for r in rows], [r["text"] for r in rows]
    rng = np.random.default_rng(0)
    data = distil_set(titles, bodies, lambda texts, role: rng.normal(size=(len(texts), 8)), max_queries=20, depth=10)
    assert len(data) == 20 and len(data.labels) == 20 and data.kind == "distil"
    assert set(data.columns()) == {"anchor", "positive", "negative", "label"}
    assert all(a not in p for a, p in zip(data.anchors, data.positives))


def test_margin_scale_is_the_least_squares_factor():
    assert fit_margin_scale(np.array([1.0, 0.5]), np.array([0.2, 0.1])) == pytest.approx(0.2)
    assert fit_margin_scale(np.array([1.0]), np.array([-1.0])) == 1.0 and fit_margin_scale(np.zeros(2), np.ones(2)) == 1.0
    with pytest.raises(ValueError, match="teacher margins but"):
        fit_margin_scale(np.ones(2), np.ones(3))


# -- the loss -----------------------------------------------------------------------------------------


def test_margin_mse_is_zero_when_student_margins_match_the_teacher():
    loss = EuclideanMarginMSELoss(torch.nn.Identity(), scale=0.5)
    q, p, n = torch.zeros(2, 3), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), torch.tensor([[2.0, 0, 0], [0, 0, 3.0]])
    # s(q, p) − s(q, n) = 0.5 · (‖q − n‖² − ‖q − p‖²) = [1.5, 4.0]
    assert float(loss.compute_loss_from_embeddings([q, p, n], torch.tensor([1.5, 4.0]))) == pytest.approx(0.0)
    assert float(loss.compute_loss_from_embeddings([q, p, n], torch.tensor([0.5, 4.0]))) == pytest.approx(0.5)
    two = loss.compute_loss_from_embeddings([q, p, n, n], torch.tensor([[1.5, 1.5], [4.0, 4.0]]))
    assert float(two) == pytest.approx(0.0)
    assert loss.get_config_dict() == {"scale": 0.5} and "GPL" in loss.citation


def test_margin_mse_default_scale_and_gradient():
    q = torch.randn(4, 16, requires_grad=True)
    out = EuclideanMarginMSELoss(torch.nn.Identity()).compute_loss_from_embeddings([q, torch.randn(4, 16), torch.randn(4, 16)],
                                                                                     torch.rand(4))
    out.backward()
    assert torch.isfinite(out) and q.grad is not None and q.grad.abs().sum() > 0


@pytest.mark.parametrize("columns, labels, message", [
    (2, torch.zeros(2), "needs \\(query, positive, negative"),
    (3, None, "needs labels"),
    (3, torch.zeros(3), "labels of shape \\(3,\\) for 2 queries"),
    (3, torch.tensor([0.0, float("nan")]), "NaN or infinite"),
])
def test_margin_mse_refuses_bad_input_clearly(columns, labels, message):
    with pytest.raises(ValueError, match=message):
        EuclideanMarginMSELoss(torch.nn.Identity()).compute_loss_from_embeddings([torch.zeros(2, 4)] * columns, labels)
    with pytest.raises(ValueError, match="scale must be"):
        EuclideanMarginMSELoss(torch.nn.Identity(), scale=-1.0)


def test_gaussian_rag_loss_passes_labels_to_its_distil_component():
    loss = GaussianRAGLoss(torch.nn.Identity(), contrastive_weight=0, isotropy_weight=0.1, distil_weight=1.0, num_slices=8)
    parts = loss.compute_loss_from_embeddings([torch.randn(8, 4) for _ in range(3)], torch.rand(8))
    assert set(parts) == {"distil", "isotropy"} and all(torch.isfinite(v) for v in parts.values())


# -- the run ------------------------------------------------------------------------------------------


def test_distil_objective_trains_the_encoder_end_to_end(tiny_model_dir, corpus_file, tmp_path):
    result = train(str(corpus_file), objective="distil", lambda_isotropy=0.1, model=tiny_model_dir, output=str(tmp_path / "out"),
                   cache_dir=str(tmp_path / "cache"), batch_size=8, max_steps=2, isotropy_sample=16, num_slices=16,
                   show_progress=False)
    report = result.report
    assert report["config"]["freeze_base"] is False and report["data"]["kind"] == "distil"
    assert report["data"]["rows"] >= 20 and len(report["steps"]) == 2
    assert {"distil", "isotropy"} <= set(report["steps"][0]) and all(np.isfinite(s["loss"]) for s in report["steps"])


def test_distil_refuses_a_frozen_base_and_labelled_data(tmp_path, corpus_file, capsys):
    with pytest.raises(ValueError, match="cannot run with --freeze-base"):
        TrainConfig(data=str(corpus_file), objective="distil", freeze_base=True, output=str(tmp_path / "o")).check()
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n")
    assert main([str(pairs), "--objective", "distil", "--output", str(tmp_path / "o")]) == 2
    assert "give a corpus (--format corpus), not pairs" in capsys.readouterr().err


@pytest.mark.parametrize("old, new", [("ragcun_train.teacher", "ragcun_train.distil.teacher"),
                                      ("ragcun_train.pseudo_queries", "ragcun_train.distil.pseudo_queries")])
def test_old_module_paths_warn_and_serve_the_moved_modules(old, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
