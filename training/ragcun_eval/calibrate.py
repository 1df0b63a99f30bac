"""Relevance calibration on labelled hits: the (distance, relevant) pairs of each query's top hits, and the fit.

``ragcun-eval calibrate DATA --split train --model M --output FOLDER`` fits a
:class:`ragcun.scoring.calibrator.RelevanceCalibrator` on split ``train`` and saves model ``M`` with it as
the model folder ``FOLDER`` (``--calibrator-only``: only ``relevance_calibrator.json`` into ``FOLDER``);
``ragcun-eval claims`` measures it (ECE) on another split. Pairs are each query's top ``depth`` (10)
retrieved documents by L2 in the model's own space, labelled by the qrels: the hits a store would score; the
calibrator's hybrid terms are fitted on each query's top hybrid hits likewise
(:func:`ragcun.store.calibrate.add_hybrid_terms`). ``calibrate CORPUS QUERIES --judgements FILE`` fits on hits
judged by hand instead (:mod:`ragcun_eval.judging`; distance only).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ragcun.index.faiss_l2 import L2Index
from ragcun.model.encoder import GaussianEncoder
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.scoring.pairs import DEPTH, hit_pairs
from ragcun.store.calibrate import add_hybrid_terms
from ragcun.store.doc_store import DocStore
from ragcun.store.hits import Record
from ragcun_eval.beir import BeirDataset
from ragcun_eval.judging import Judgements
from ragcun_eval.models import Embedder, ModelSpec
from ragcun_eval.retrieval import ModelRun


def calibration_pairs(run: ModelRun, data: BeirDataset, depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """Distances and relevance labels (qrels score > 0) of every query's top ``depth`` hits in ``run``."""
    relevant = [{d for d, s in data.qrels[q].items() if s > 0} for q in run.query_ids]
    return hit_pairs([run.distances[q] for q in run.query_ids], [run.ranked[q] for q in run.query_ids], relevant, depth)


def calibration_shares(run: ModelRun, depth: int = DEPTH) -> np.ndarray | None:
    """The BM25 shares of the hits :func:`calibration_pairs` gives, in the same order (NaN for a hit ranked
    densely); ``None`` unless ``run`` is hybrid."""
    if run.bm25_shares is None:
        return None
    return np.concatenate([run.bm25_shares[q][:depth] for q in run.query_ids]) if run.query_ids else np.zeros(0)


def store_relevance(calibrator: RelevanceCalibrator, distances: np.ndarray, shares: np.ndarray | None) -> np.ndarray:
    """The ``P(relevant)`` a store gives hits at ``distances``: a hybrid hit (a share that is not NaN) reads its
    BM25 share too, every other hit its distance alone."""
    scores = calibrator(distances)
    if shares is not None:
        hybrid = ~np.isnan(shares)
        scores[hybrid] = calibrator(distances[hybrid], shares[hybrid])
    return scores


def fit_calibrator(run: ModelRun, data: BeirDataset, split: str, depth: int = DEPTH,
                   fusion: FusionSettings | None = None) -> RelevanceCalibrator:
    """A calibrator fitted on ``run``'s top-``depth`` hits of ``data`` (qrels ``split``), with hybrid terms fitted on
    the queries' hybrid hits (fused as for a model carrying ``fusion``); the run must rank by L2 in the model's
    raw space."""
    if run.spec.geometry != "l2":
        raise ValueError(f"calibrate a model in its own L2 space (geometry 'l2'), not {run.spec.geometry!r}: "
                         "the stores score raw L2 distances")
    distances, labels = calibration_pairs(run, data, depth)
    calibrator = RelevanceCalibrator.fit(distances, labels,
                                         fitted_on=f"{data.name} {split}: top-{depth} hits of {len(run.query_ids)} queries")
    store = DocStore(L2Index(run.space.docs.shape[1]))
    store.add([Record(d, t) for d, t in zip(data.doc_ids, data.doc_texts)], run.space.docs)
    relevant = [{d for d, s in data.qrels[q].items() if s > 0} for q in run.query_ids]
    return add_hybrid_terms(calibrator, store, run.space.queries, [data.queries[q] for q in run.query_ids], relevant,
                            fusion)


def fit_on_judgements(judgements: Judgements, queries: dict[str, str], docs: dict[str, str],
                      spec: ModelSpec, embedder: Embedder) -> RelevanceCalibrator:
    """A calibrator fitted on judged (query, document) pairs at their L2 distances in ``spec``'s model."""
    if spec.dense_geometry != "l2":
        raise ValueError(f"calibrate a model in its own L2 space (geometry 'l2'), not {spec.dense_geometry!r}")
    q_rows = {q: i for i, q in enumerate(dict.fromkeys(judgements.query_ids))}
    d_rows = {d: i for i, d in enumerate(dict.fromkeys(judgements.doc_ids))}
    q_vecs = embedder.embed(spec, [queries[q] for q in q_rows], "query")
    d_vecs = embedder.embed(spec, [docs[d] for d in d_rows], "document")
    diff = q_vecs[[q_rows[q] for q in judgements.query_ids]] - d_vecs[[d_rows[d] for d in judgements.doc_ids]]
    distances = np.sqrt(np.sum(diff.astype(np.float64) ** 2, axis=1))
    try:
        return RelevanceCalibrator.fit(distances, judgements.relevant,
                                       fitted_on=f"{Path(judgements.source).name}: {len(judgements)} judged hits "
                                                 f"of {len(q_rows)} queries")
    except ValueError as exc:
        raise ValueError(f"{judgements.source}: {exc}") from None


def save_calibrated_model(model: GaussianEncoder, calibrator: RelevanceCalibrator, folder: str | Path) -> Path:
    """Save ``model`` with ``calibrator`` as a complete model folder ``folder`` (``GaussianEncoder(folder)``,
    ``--model folder`` and the stores then use that calibrator).

    Written into a temporary sibling and swapped in; an existing ``folder`` must be a model folder (it is
    replaced) or empty. ``model`` keeps its own calibrator."""
    target = Path(folder)
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                     and not (target / "config_sentence_transformers.json").is_file())):
        raise ValueError(f"--output {target} exists and is not a model folder; give a new or empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    own = model.relevance_calibrator
    try:
        model.relevance_calibrator = calibrator
        model.save(str(tmp))
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-")) / "previous"
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old.parent)
    finally:
        model.relevance_calibrator = own
        if tmp.exists():
            shutil.rmtree(tmp)
    return target
