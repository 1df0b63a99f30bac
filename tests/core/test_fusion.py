"""Hybrid fusion choices: each normalisation and RRF on hand-computable numbers, callables, bad values, the
stores' default (fixed floors), per-query choices through ``DocStore`` and ``GaussianRetriever``, and a
model's fitted weight."""

from __future__ import annotations

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.scoring.fusion_settings import FusionSettings
from ragcun.store.doc_store import DocStore, Record
from ragcun.store.fusion import (
    DEFAULT_ALPHA,
    DEFAULT_NORMALIZATION,
    HybridFusion,
    fixed_floor,
    fuse,
    minmax,
    resolve_weights,
    rrf,
    search_fusion,
    zscore,
)


def test_each_normalisation_by_hand() -> None:
    np.testing.assert_allclose(fixed_floor(np.array([2.0, 4.0, 3.0]), 0.0), [0.5, 1.0, 0.75])
    np.testing.assert_allclose(fixed_floor(np.array([-3.0, -1.0, -5.0]), -4.0), [1 / 3, 1.0, 0.0])  # below: 0
    np.testing.assert_allclose(fixed_floor(np.array([1.0, 1.0]), 2.0), [0.0, 0.0])
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(minmax(np.array([5.0, 5.0])), [1.0, 1.0])
    np.testing.assert_allclose(zscore(np.array([1.0, 2.0, 3.0])), [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    np.testing.assert_allclose(zscore(np.array([7.0, 7.0])), [0.0, 0.0])


def test_convex_fusion_by_hand_for_each_normalisation() -> None:
    dist, bm25 = np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0])  # -d² = 0, -1, -4; |q|² = 1: floor -4
    fixed = HybridFusion(alpha=0.5).scores(dist, bm25, 1.0)
    np.testing.assert_allclose(fixed, 0.5 * np.array([1.0, 0.75, 0.0]) + 0.5 * np.array([0.0, 0.5, 1.0]))
    mm = HybridFusion(normalization="minmax", alpha=0.5).scores(dist, bm25, 1.0)
    np.testing.assert_allclose(mm, 0.5 * np.array([1.0, 0.75, 0.0]) + 0.5 * np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(fuse(dist, bm25, 0.5), mm)  # fuse() is min–max convex fusion, as before
    far = HybridFusion(alpha=1.0).scores(np.array([1.0, 2.0]), np.zeros(2), 4.0)  # floor d² 16: (16-d²)/(16-1)
    np.testing.assert_allclose(far, [1.0, 12 / 15])
    z = HybridFusion(normalization="zscore", alpha=0.25).scores(dist, bm25, 1.0)
    np.testing.assert_allclose(z, 0.25 * zscore(np.array([0.0, -1.0, -4.0])) + 0.75 * zscore(bm25))


def test_rrf_by_hand() -> None:
    # dense ranks (by -d²): 1, 2, 3; lexical ranks among BM25 > 0: c 1, b 2, a absent
    got = rrf(np.array([0.0, -1.0, -4.0]), np.array([0.0, 2.0, 4.0]), k=10)
    np.testing.assert_allclose(got, [1 / 11, 1 / 12 + 1 / 12, 1 / 13 + 1 / 11])
    via = HybridFusion("rrf", alpha=0.0, rrf_k=10).scores(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0]), 1.0)
    np.testing.assert_allclose(via, got)  # alpha plays no part in RRF


def test_callable_fusion_gets_both_sides_and_is_checked() -> None:
    seen = {}

    def product(dense, sparse):
        seen["args"] = (dense.tolist(), sparse.tolist())
        return sparse * np.exp(dense)

    out = HybridFusion(product).scores(np.array([0.0, 1.0]), np.array([1.0, 3.0]), 1.0)
    assert seen["args"] == ([0.0, -1.0], [1.0, 3.0])
    np.testing.assert_allclose(out, [1.0, 3 * np.exp(-1.0)])
    for bad, match in ((lambda d, s: d[:1], "one score per candidate"), (lambda d, s: d * np.nan, "non-finite"),
                       (lambda d, s: "x", "must return"), (lambda d, s: None, "one score per candidate")):
        with pytest.raises(ValueError, match=f"fusion callable .*{match}"):
            HybridFusion(bad).scores(np.array([0.0, 1.0]), np.array([1.0, 3.0]), 1.0)


@pytest.mark.parametrize(("kwargs", "name"), [({"fusion": "bm25"}, "fusion"), ({"fusion": 3}, "fusion"),
                                              ({"rrf_k": 0}, "rrf_k"), ({"rrf_k": -5}, "rrf_k"), ({"rrf_k": 2.5}, "rrf_k"),
                                              ({"normalization": "l2"}, "normalization"), ({"alpha": 1.5}, "alpha")])
def test_bad_values_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        HybridFusion(**kwargs)
    store = _store()
    with pytest.raises(ValueError, match=name):
        store.search(np.zeros(4, np.float32), 2, text="apple", mode="hybrid", **kwargs)


def test_resolve_weights_prefers_explicit_then_fitted_then_default() -> None:
    fit = FusionSettings(0.4, "minmax", {"corpus": "x"})
    assert resolve_weights(None, None, None) == (DEFAULT_ALPHA, DEFAULT_NORMALIZATION) == (0.8, "fixed-floor")
    assert resolve_weights(None, "minmax", None) == (0.7, "minmax")  # each normalisation has its own default
    assert resolve_weights(None, None, fit) == (0.4, "minmax")
    assert resolve_weights(0.9, None, fit) == (0.9, "fixed-floor")
    assert resolve_weights(None, "minmax", fit) == (0.4, "minmax")
    assert resolve_weights(None, "zscore", fit) == (0.7, "zscore")  # fitted for another normalisation: its default
    with pytest.raises(ValueError, match="normalization"):
        resolve_weights(None, None, FusionSettings(0.4, "softmax", {}))


def test_search_fusion_takes_each_query_setting_else_the_stores() -> None:
    class Defaults:
        alpha, normalization, fusion, rrf_k = 0.3, "zscore", "rrf", 10

    fit = FusionSettings(0.4, "minmax", {"corpus": "x"})
    assert search_fusion(Defaults(), fit) == {"alpha": 0.3, "normalization": "zscore", "fusion": "rrf", "rrf_k": 10}
    assert search_fusion(Defaults(), fit, alpha=0.9, normalization="minmax", fusion="convex", rrf_k=5) == \
        {"alpha": 0.9, "normalization": "minmax", "fusion": "convex", "rrf_k": 5}
    Defaults.alpha = Defaults.normalization = None  # type: ignore[assignment]
    assert search_fusion(Defaults(), fit)["alpha"] == 0.4  # nothing set anywhere: the model's fitted weight
    with pytest.raises(ValueError, match="alpha"):
        search_fusion(Defaults(), None, alpha=1.5)


DOCS = {"a": "apple banana", "b": "banana cherry", "c": "cherry date", "d": "date apple apple", "e": "elder fig"}


def _store() -> DocStore:
    rng = np.random.default_rng(1)
    store = DocStore(L2Index(4))
    store.add([Record(i, t) for i, t in DOCS.items()], rng.normal(size=(len(DOCS), 4)).astype(np.float32))
    return store


def test_docstore_default_is_fixed_floor_and_fused_score_is_the_fused_score() -> None:
    store, q = _store(), np.array([0.5, -0.2, 0.1, 0.3], np.float32)
    hits = store.search(q, 5, text="apple", mode="hybrid")
    d = np.array([h.distance for h in hits])
    bm = np.array([h.bm25_score for h in hits])
    expect = HybridFusion().scores(d, bm, float(q @ q))
    np.testing.assert_allclose([h.fused_score for h in hits], expect, rtol=1e-5)
    assert [h.fused_score for h in hits] == sorted((h.fused_score for h in hits), reverse=True)
    mm = store.search(q, 5, text="apple", mode="hybrid", normalization="minmax")
    np.testing.assert_allclose([h.fused_score for h in mm], fuse(np.array([h.distance for h in mm]),
                                                                 np.array([h.bm25_score for h in mm]), 0.7), rtol=1e-5)


def test_docstore_rrf_ranks_and_scores_by_reciprocal_rank() -> None:
    store, q = _store(), np.array([0.5, -0.2, 0.1, 0.3], np.float32)
    hits = store.search(q, 5, text="apple", mode="hybrid", fusion="rrf", rrf_k=1)
    by_dist = sorted(hits, key=lambda h: h.distance)
    by_bm25 = sorted([h for h in hits if h.bm25_score > 0], key=lambda h: -h.bm25_score)
    for h in hits:
        want = 1 / (1 + 1 + by_dist.index(h)) + (1 / (1 + 1 + by_bm25.index(h)) if h in by_bm25 else 0.0)
        assert h.fused_score == pytest.approx(want)
    assert [h.fused_score for h in hits] == sorted((h.fused_score for h in hits), reverse=True)
    assert max(h.fused_score for h in hits) <= 2 / (1 + 1)


def test_docstore_callable_fusion_and_sparse_mode_ignores_fusion() -> None:
    store, q = _store(), np.array([0.5, -0.2, 0.1, 0.3], np.float32)
    lexical_only = store.search(q, 3, text="apple", mode="hybrid", fusion=lambda dense, sparse: sparse)
    assert [h.record.id for h in lexical_only][:2] == ["d", "a"]
    sparse = store.search(None, 3, text="apple", mode="sparse", fusion="rrf")
    assert [h.record.id for h in sparse] == ["d", "a"] and sparse[0].fused_score == 1.0  # BM25 / its maximum


def test_retriever_uses_a_models_fitted_weight_unless_alpha_is_set(tiny_model_dir, tmp_path) -> None:
    from ragcun import GaussianEncoder, GaussianRetriever

    model = GaussianEncoder(tiny_model_dir, output_dim=16)
    model.fusion_settings = FusionSettings(0.25, "minmax", {"queries": 10})
    model.save(str(tmp_path / "m"))
    retriever = GaussianRetriever(str(tmp_path / "m"))
    assert retriever.encoder.fusion_settings == model.fusion_settings
    retriever.add_documents(list(DOCS.values()))
    vec = retriever.encoder.encode(["apple date"], convert_to_numpy=True)[0]

    def fused(**kw):
        return [round(h.fused_score, 6) for h in retriever.store.search(vec, 5, text="apple date", mode="hybrid", **kw)]

    got = [round(s, 6) for _, _, s in retriever.retrieve_with_scores("apple date", 5)]
    assert got == fused(alpha=0.25, normalization="minmax") != fused()
    explicit = [round(s, 6) for _, _, s in retriever.retrieve_with_scores("apple date", 5, alpha=0.9)]
    assert explicit == fused(alpha=0.9)
    rrf_scores = [round(s, 6) for _, _, s in retriever.retrieve_with_scores("apple date", 5, fusion="rrf")]
    assert rrf_scores == fused(fusion="rrf")
    with pytest.raises(ValueError, match="rrf_k"):
        GaussianRetriever(str(tmp_path / "m"), rrf_k=0)
