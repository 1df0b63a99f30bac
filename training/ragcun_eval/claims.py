"""The Gaussian-embedding claims measured on one retrieval run, each with a verdict from a fixed rule.

Pairs and rules (``n_irrelevant`` and ``calibration_depth`` are arguments of :func:`measure_claims`):

- **Separation.** Relevant pairs: every (query, judged-relevant doc). Irrelevant pairs: per query,
  ``n_irrelevant`` (100) random corpus docs not judged relevant (seed 0). Scores are the geometry's
  native similarity (cosine, or −L2 distance). Reported: the raw gap (mean relevant − mean
  irrelevant score; not comparable across geometries), the AUC of relevant vs irrelevant scores and
  Cohen's d (pooled SD), all over the pairs of every query together, as one score threshold for
  all queries would see them. Rule: *held* for a model when both its AUC and its d exceed those of the
  reference model, the first ``--model`` (reported as ``reference``).
- **Calibration.** The score a store gives the top ``calibration_depth`` (10) retrieved docs per
  query, against qrels relevance: the model's relevance calibrator (``P(relevant)``,
  :mod:`ragcun.scoring.calibrator`; ``score: calibrator``) when it carries one and is scored in its own L2
  space (a hybrid run's hits as a store scores them, by distance and BM25 share: ``score: calibrator
  (hybrid)`` when the calibrator has hybrid terms), else the distance law
  (``ragcun.scoring.distance_law.DistanceLaw.fit`` on the indexed corpus: the law
  a store of ≥ 32 vectors uses in its default ``auto`` mode; ``score: chi2 law``). Reported: the
  expected calibration error over 10 equal-width bins and the AUC of the score for relevance among
  those pairs. Rule: *held* when ECE ≤ 0.1 and that AUC > 0.5 with one-sided Mann–Whitney p < 0.05
  (a constant score at the base rate is calibrated but says nothing, so it does not pass).
- **Norm as confidence.** Spearman correlation between each query's norm (see
  ``ragcun_eval.geometry.Space``) and its nDCG@10, and the AUROC of the norm for predicting that
  the top result is relevant. Rule: *held* when ρ > 0 with two-sided p < 0.05 and AUROC > 0.5 with
  one-sided Mann–Whitney p < 0.05 (a larger norm meaning more confidence).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.distance_law import DistanceLaw
from ragcun_eval.beir import BeirDataset
from ragcun_eval.calibrate import calibration_pairs, calibration_shares, store_relevance
from ragcun_eval.geometry import Space
from ragcun_eval.retrieval import ModelRun

ECE_MAX = 0.1
ALPHA = 0.05
ECE_BINS = 10


def auc(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """AUC of ``positive`` over ``negative`` scores (ties count ½) and the one-sided Mann–Whitney p-value."""
    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    if len(pos) == 0 or len(neg) == 0:
        return math.nan, math.nan
    res = stats.mannwhitneyu(pos, neg, alternative="greater")
    return float(res.statistic / (len(pos) * len(neg))), float(res.pvalue)


def cohens_d(positive: np.ndarray, negative: np.ndarray) -> float:
    """(mean positive − mean negative) / pooled standard deviation (ddof 1)."""
    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    n1, n2 = len(pos), len(neg)
    if n1 < 2 or n2 < 2:
        return math.nan
    pooled = math.sqrt(((n1 - 1) * pos.var(ddof=1) + (n2 - 1) * neg.var(ddof=1)) / (n1 + n2 - 2))
    return float((pos.mean() - neg.mean()) / pooled) if pooled > 0 else math.nan


def reliability_bins(scores: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Equal-width bins over [0, 1]: count, mean score and observed relevance rate of each non-empty bin."""
    s, y = np.asarray(scores, float), np.asarray(labels, float)
    which = np.minimum((s * bins).astype(int), bins - 1)
    return [{"lo": b / bins, "hi": (b + 1) / bins, "count": int((which == b).sum()),
             "score": float(s[which == b].mean()), "relevant": float(y[which == b].mean())}
            for b in range(bins) if (which == b).any()]


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / N) · |mean score_b − relevance rate_b| over equal-width bins."""
    table = reliability_bins(scores, labels, bins)
    n = sum(b["count"] for b in table)
    return float(sum(b["count"] / n * abs(b["score"] - b["relevant"]) for b in table)) if n else math.nan


def norm_confidence(norms: np.ndarray, ndcg: np.ndarray, top1_relevant: np.ndarray) -> dict[str, float]:
    """Spearman ρ (and p) of norm vs nDCG@10; AUROC (and one-sided p) of norm for a relevant top result."""
    norms, ndcg, top1 = np.asarray(norms, float), np.asarray(ndcg, float), np.asarray(top1_relevant, bool)
    if np.ptp(norms) == 0 or np.ptp(ndcg) == 0:
        rho, p = math.nan, math.nan
    else:
        res = stats.spearmanr(norms, ndcg)
        rho, p = float(res.statistic), float(res.pvalue)
    area, area_p = auc(norms[top1], norms[~top1])
    return {"norm_spearman": rho, "norm_spearman_p": p, "norm_auroc": area, "norm_auroc_p": area_p}


@dataclass
class ClaimResult:
    """The claims measured for one model and geometry on one dataset, with verdicts."""

    dataset: str
    model: str
    geometry: str
    gap: float
    auc: float
    cohens_d: float
    ece: float
    calibration_auc: float
    calibration_score: str
    norm_spearman: float
    norm_spearman_p: float
    norm_auroc: float
    norm_auroc_p: float
    n_relevant_pairs: int
    n_irrelevant_pairs: int
    n_calibration_pairs: int
    reliability: list[dict] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``model:geometry``."""
        return f"{self.model}:{self.geometry}"

    def row(self) -> dict:
        """Flat row for JSON / CSV (verdicts as ``separation``, ``calibration``, ``norm`` columns)."""
        data = asdict(self)
        data.pop("reliability")
        return {**{k: v for k, v in data.items() if k != "verdicts"}, **self.verdicts}


def _distances(space: Space, query_row: int, doc_rows: list[int]) -> np.ndarray:
    return np.linalg.norm(space.docs[doc_rows].astype(np.float64) - space.queries[query_row], axis=1)


def measure_claims(run: ModelRun, data: BeirDataset, n_irrelevant: int = 100, calibration_depth: int = 10,
                   seed: int = 0, calibrator: RelevanceCalibrator | None = None) -> ClaimResult:
    """Measure separation, calibration and norm-as-confidence for ``run`` (verdicts except separation's).

    ``calibrator``: the model's relevance calibrator, if it has one (used when ``run``'s dense side ranks by L2)."""
    space = run.space
    row_of = {d: i for i, d in enumerate(data.doc_ids)}
    rng = np.random.default_rng(seed)
    pos, neg = [], []
    for qi, q in enumerate(run.query_ids):
        relevant = {d for d, s in data.qrels[q].items() if s > 0}
        others = rng.choice(len(data.doc_ids), min(n_irrelevant + len(relevant), len(data.doc_ids)), replace=False)
        others = [i for i in others if data.doc_ids[i] not in relevant and data.doc_ids[i] != q][:n_irrelevant]
        pos.extend(space.similarity(_distances(space, qi, [row_of[d] for d in sorted(relevant)])))
        neg.extend(space.similarity(_distances(space, qi, others)))
    pos, neg = np.asarray(pos), np.asarray(neg)
    area, _ = auc(pos, neg)

    distances, labels = calibration_pairs(run, data, calibration_depth)
    shares = calibration_shares(run, calibration_depth)
    if calibrator is not None and run.spec.dense_geometry == "l2":
        scores = store_relevance(calibrator, distances, shares)
        score_name = "calibrator (hybrid)" if shares is not None and calibrator.hybrid is not None else "calibrator"
    else:
        scores, score_name = DistanceLaw.fit(space.docs)(distances), "chi2 law"
    ece = expected_calibration_error(scores, labels)
    cal_auc, cal_p = auc(scores[labels], scores[~labels])

    ndcg = np.array([run.per_query[q]["ndcg@10"] for q in run.query_ids])
    top1 = np.array([bool(run.ranked[q]) and data.qrels[q].get(run.ranked[q][0], 0) > 0 for q in run.query_ids])
    norm = norm_confidence(space.query_norms, ndcg, top1)

    result = ClaimResult(run.dataset, run.spec.name, run.spec.geometry, float(pos.mean() - neg.mean()), area,
                         cohens_d(pos, neg), ece, cal_auc, score_name, **norm, n_relevant_pairs=len(pos), n_irrelevant_pairs=len(neg),
                         n_calibration_pairs=len(scores), reliability=reliability_bins(scores, labels))
    result.verdicts["calibration"] = verdict(ece <= ECE_MAX and cal_auc > 0.5 and cal_p < ALPHA)
    result.verdicts["norm"] = verdict(norm["norm_spearman"] > 0 and norm["norm_spearman_p"] < ALPHA
                                      and norm["norm_auroc"] > 0.5 and norm["norm_auroc_p"] < ALPHA)
    return result


def verdict(held: bool) -> str:
    """``"held"`` or ``"did not hold"`` (NaN comparisons are False, so undefined values do not hold)."""
    return "held" if held else "did not hold"


def judge_separation(results: list[ClaimResult]) -> None:
    """Set each result's separation verdict against the first result of its dataset (the reference)."""
    reference: dict[str, ClaimResult] = {}
    for r in results:
        ref = reference.setdefault(r.dataset, r)
        r.verdicts["separation"] = "reference" if ref is r else verdict(r.auc > ref.auc and r.cohens_d > ref.cohens_d)


def verdict_lines(results: list[ClaimResult]) -> list[str]:
    """One line per claim and model: the figures and the verdict."""
    lines = []
    for r in results:
        tag = f"[{r.dataset}] {r.label}"
        lines.append(f"separation  {tag}: gap {r.gap:+.4f}, AUC {r.auc:.4f}, d {r.cohens_d:.3f} -> {r.verdicts.get('separation', '?')}")
        lines.append(f"calibration {tag}: {r.calibration_score}, ECE {r.ece:.4f}, AUC {r.calibration_auc:.4f} (rule: ECE <= {ECE_MAX}, AUC > 0.5 at p < {ALPHA}) -> {r.verdicts['calibration']}")
        lines.append(f"norm        {tag}: Spearman {r.norm_spearman:+.3f} (p {r.norm_spearman_p:.3g}), "
                     f"AUROC {r.norm_auroc:.3f} (p {r.norm_auroc_p:.3g}) -> {r.verdicts['norm']}")
    return lines
