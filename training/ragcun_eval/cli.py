"""``ragcun-eval``: retrieval metrics, the Gaussian-embedding claims and isotropy reports on BEIR folders.

Examples::

    ragcun-eval retrieval ../shared/data/beir/scifact --model bundled:cosine --model bundled:l2 \\
        --model bundled:whitened --model runs/gauss --output out/scifact
    ragcun-eval claims ../shared/data/beir/scifact --model bundled --model runs/gauss --output out/claims
    ragcun-eval calibrate ../shared/data/beir/scifact --split train --max-queries 50 --model runs/gauss \
        --output runs/gauss-calibrated
    ragcun-eval judge my_corpus.jsonl my_queries.txt --model runs/gauss --queries 50 --output judgements.csv
    ragcun-eval calibrate my_corpus.jsonl my_queries.txt --judgements judgements.csv --model runs/gauss \
        --output runs/gauss-calibrated
    ragcun-eval isotropy --model bundled --model runs/gauss --texts ../shared/data/beir/scifact --output out/iso

Arguments are parsed before torch or any model is imported: ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcun.scoring.calibrator import RelevanceCalibrator
    from ragcun_eval.beir import BeirDataset
    from ragcun_eval.claims import ClaimResult
    from ragcun_eval.models import Embedder, ModelSpec
    from ragcun_eval.retrieval import ModelRun

DESCRIPTION = ("Evaluate embedding models on BEIR folders: retrieval metrics; the Gaussian-embedding claims "
               "(separation, calibration, norm as confidence) with verdicts; isotropy reports with plots.")


def load_datasets(paths: Sequence[str], split: str) -> list[BeirDataset]:
    """Split ``split`` of each path, a BEIR folder or a folder of BEIR folders."""
    from ragcun_eval.beir import find_beir_dirs, load_beir

    datasets = []
    for p in paths:
        root = Path(p)
        dirs = [root] if (root / "corpus.jsonl").is_file() else find_beir_dirs(root, split)
        if not dirs:
            raise FileNotFoundError(f"{root} is neither a BEIR folder (corpus.jsonl, queries.jsonl, qrels/{split}.tsv) nor holds one")
        datasets += [load_beir(d, split) for d in dirs]
    return datasets


def cut_datasets(datasets: Sequence[BeirDataset], split: str, max_queries: int | None, max_docs: int | None,
                 seed: int = 0) -> list[BeirDataset]:
    """Each dataset, optionally cut to a subset (drawn with ``seed``). A ``max_queries`` above a split's query
    count takes them all and says so on stderr."""
    cut = []
    for data in datasets:
        if max_queries is not None and max_queries > len(data.queries):
            print(f"ragcun-eval: note: {data.name} {split} has {len(data.queries)} queries "
                  f"(asked for {max_queries}): using all", file=sys.stderr)
        cut.append(data.subset(max_queries, max_docs, seed) if max_queries or max_docs else data)
    return cut


def run_all(datasets: Sequence[BeirDataset], specs: Sequence[ModelSpec], embedder: Embedder,
            alpha: float | None = None) -> list[ModelRun]:
    """Every model on every dataset, in order (``alpha``: the dense weight of ``hybrid`` rows; ``None``: each model's
    fitted weight if it carries one, else ragcun's default)."""
    from ragcun.store.fusion import check_alpha
    from ragcun_eval.retrieval import run_model

    alpha = None if alpha is None else check_alpha(alpha)
    return [run_model(data, spec, embedder, alpha=alpha) for data in datasets for spec in specs]


def retrieval_outputs(runs: Sequence[ModelRun], out_dir: Path | None) -> str:
    """The Markdown table of ``runs``; with ``out_dir``, also results.json/.csv/.md and retrieval.png."""
    from ragcun_eval.report import markdown_table, retrieval_chart, write_table

    rows = [r.row() for r in runs]
    if out_dir is None:
        return markdown_table(rows)
    table = write_table(rows, out_dir, "results")
    retrieval_chart(rows, out_dir / "retrieval.png")
    return table


def claims_outputs(runs: Sequence[ModelRun], datasets: Sequence[BeirDataset], out_dir: Path | None,
                   embedder: Embedder | None = None) -> list[ClaimResult]:
    """Measure and judge the claims (with ``embedder``, each model's own relevance calibrator where it has one);
    with ``out_dir``, write claims.json/.csv/.md and reliability_<dataset>.png."""
    from ragcun_eval.claims import judge_separation, measure_claims
    from ragcun_eval.report import reliability_diagram, write_table

    by_name = {d.name: d for d in datasets}
    results = [measure_claims(r, by_name[r.dataset], calibrator=None if embedder is None else
                              getattr(embedder.model(r.spec).model, "relevance_calibrator", None)) for r in runs]
    judge_separation(results)
    if out_dir is not None:
        write_table([r.row() for r in results], out_dir, "claims")
        for name in by_name:
            reliability_diagram([r for r in results if r.dataset == name], out_dir / f"reliability_{name}.png")
    return results


def _describe(calibrator: RelevanceCalibrator) -> str:
    line = (f"P(relevant) = sigmoid({calibrator.intercept:.4f} {calibrator.slope:+.6f} * d^2) from "
            f"{calibrator.n_pairs} pairs ({calibrator.n_relevant} relevant)")
    h = calibrator.hybrid
    return line + ("; hybrid hits: distance only" if h is None else
                   f"; hybrid hits: sigmoid({h.intercept:.4f} {h.slope:+.6f} * d^2 {h.bm25:+.4f} * bm25_share) "
                   f"from {h.n_pairs} pairs ({h.n_relevant} relevant)")


def write_calibrated(spec: ModelSpec, embedder: Embedder, calibrator: RelevanceCalibrator, out_dir: Path,
                     calibrator_only: bool) -> str:
    """Save ``spec``'s model with ``calibrator`` as model folder ``out_dir`` (or, ``calibrator_only``, only the
    calibrator into ``out_dir``); the report line."""
    from ragcun_eval.calibrate import save_calibrated_model

    if calibrator_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        return f"wrote {calibrator.save(out_dir)}"
    if not spec.gaussian:
        raise ValueError(f"--output saves a Gaussian model with its calibrator; {spec.name!r} is not one "
                         "(use gaussian, a ragcun-train folder, or --calibrator-only)")
    return f"wrote model folder {save_calibrated_model(embedder.model(spec).model, calibrator, out_dir)}"


def held_out_line(spec: ModelSpec, calibrator: RelevanceCalibrator, rest: BeirDataset, split: str,
                  embedder: Embedder) -> str:
    """The ECE of ``calibrator`` on the top-10 dense and hybrid hits of ``rest`` (queries it was not fitted on),
    beside that of the calibrator ``spec``'s model carries, if any."""
    from dataclasses import replace

    from ragcun_eval.calibrate import calibration_pairs, calibration_shares, store_relevance
    from ragcun_eval.claims import expected_calibration_error
    from ragcun_eval.retrieval import run_model

    runs = [run_model(rest, replace(spec, geometry=g), embedder) for g in ("l2", "hybrid")]
    pairs = [(*calibration_pairs(r, rest), calibration_shares(r)) for r in runs]

    def eces(cal: RelevanceCalibrator) -> str:
        dense, hybrid = (expected_calibration_error(store_relevance(cal, d, s), y) for d, y, s in pairs)
        return f"ECE {dense:.4f} dense, {hybrid:.4f} hybrid"

    own = getattr(embedder.model(spec).model, "relevance_calibrator", None)
    return (f"   held out, the top 10 of the {split} split's other {len(rest.queries)} queries: {eces(calibrator)}"
            + (f" (the model's own calibrator: {eces(own)})" if own is not None else ""))


def calibrate_output(runs: Sequence[ModelRun], datasets: Sequence[BeirDataset], split: str, out_dir: Path | None,
                     embedder: Embedder | None = None, calibrator_only: bool = False,
                     held_out: Sequence[BeirDataset] = ()) -> str:
    """Fit a relevance calibrator on each run; with ``out_dir`` (one run only), save the model with it there
    (:func:`write_calibrated`; ``embedder`` holds the model). ``held_out``: each dataset with only the split's
    queries the fit did not draw, on which the report also measures the calibrator (:func:`held_out_line`). Returns a report."""
    from ragcun.store.fusion import fitted_fusion
    from ragcun_eval.calibrate import calibration_pairs, fit_calibrator
    from ragcun_eval.claims import expected_calibration_error

    if out_dir is not None and (len(runs) != 1 or embedder is None):
        raise ValueError(f"--output takes the calibrator of one model on one dataset; got {len(runs)} runs")
    by_name = {d.name: d for d in datasets}
    rest_of = {d.name: d for d in held_out if d.queries}
    lines = []
    for run in runs:
        data = by_name[run.dataset]
        calibrator = fit_calibrator(run, data, split,
                                    fusion=fitted_fusion(embedder.model(run.spec).model) if embedder else None)
        distances, labels = calibration_pairs(run, data)
        lines.append(f"[{run.dataset}] {run.spec.label}: {_describe(calibrator)}; "
                     f"ECE on them {expected_calibration_error(calibrator(distances), labels):.4f}")
        if embedder is not None and run.dataset in rest_of:
            lines.append(held_out_line(run.spec, calibrator, rest_of[run.dataset], split, embedder))
        if out_dir is not None and embedder is not None:
            lines.append(write_calibrated(run.spec, embedder, calibrator, out_dir, calibrator_only))
    return "\n".join(lines)


def judged_output(args: argparse.Namespace, spec: ModelSpec, embedder: Embedder) -> str:
    """``calibrate CORPUS QUERIES --judgements FILE``: fit on the judged hits; with ``--output``, save as above."""
    from ragcun_eval.calibrate import fit_on_judgements
    from ragcun_eval.judging import read_judgements

    corpus, queries = _corpus_and_queries(args.data_dir, "calibrate --judgements")
    judgements = read_judgements(args.judgements, queries, corpus)
    calibrator = fit_on_judgements(judgements, queries, corpus, spec, embedder)
    lines = [f"{args.judgements}: {_describe(calibrator)}"]
    if args.output is not None:
        lines.append(write_calibrated(spec, embedder, calibrator, args.output, args.calibrator_only))
    return "\n".join(lines)


def _corpus_and_queries(paths: Sequence[str], command: str) -> tuple[dict[str, str], dict[str, str]]:
    from ragcun_eval.judging import load_texts

    if len(paths) != 2:
        raise ValueError(f"{command} takes two paths, CORPUS and QUERIES; got {len(paths)}")
    return load_texts(paths[0], "document"), load_texts(paths[1], "query")


def judge_output(args: argparse.Namespace, spec: ModelSpec, embedder: Embedder) -> str:
    """``judge CORPUS QUERIES``: write the judging sheet of ``--queries`` sampled queries' top-10 hits."""
    from ragcun_eval.judging import sample_queries, write_judging_sheet

    if args.output is None:
        raise ValueError("judge needs --output FILE.csv (the sheet to fill in)")
    if spec.dense_geometry != "l2":
        raise ValueError(f"judge ranks by L2 in a Gaussian model's space; {spec.label} is {spec.dense_geometry}")
    corpus, queries = _corpus_and_queries(args.data_dir, "judge")
    chosen, note = sample_queries(queries, args.queries, args.seed)
    doc_ids = list(corpus)
    n = write_judging_sheet(args.output, chosen, queries, doc_ids, corpus,
                            embedder.embed(spec, [queries[q] for q in chosen], "query"),
                            embedder.embed(spec, [corpus[d] for d in doc_ids], "document"))
    return "\n".join([*([f"note: {note}"] if note else []),
                      f"wrote {n} hits of {len(chosen)} queries to {args.output}: fill in 'relevant' (1 or 0), then "
                      f"ragcun-eval calibrate CORPUS QUERIES --judgements {args.output} --model {spec.name} --output DIR"])


def _positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", metavar="NAME[:GEOMETRY]",
                   help="model name or path (bundled: the bundled base model; gaussian: the bundled Gaussian model), "
                        "optional :cosine/:l2/:whitened/:hybrid/:lexical; repeat to compare "
                        "(default: gaussian for calibrate and judge, else bundled)")
    p.add_argument("--output", type=Path, help="folder for the result files")
    p.add_argument("--cache-dir", type=Path, help="base-embedding cache, shared with ragcun-train (default $RAGCUN_CACHE_DIR or ~/.cache/ragcun/embeddings)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="encoding batch size (default 64)")
    p.add_argument("--device", help="torch device (default: sentence-transformers' choice)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ragcun-eval``."""
    parser = argparse.ArgumentParser(prog="ragcun-eval", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("retrieval", "nDCG@10, Recall@10/@100, MRR@10, MAP@100 on BEIR folders"),
                            ("claims", "separation, calibration and norm-as-confidence, with verdicts"),
                            ("calibrate", "fit a relevance calibrator (P(relevant) from L2 distance) on a labelled "
                                          "split or judged hits; --output saves the model with it as a new model folder")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("data_dir", nargs="+", help="a BEIR folder, or a folder of BEIR folders")
        split = "train" if name == "calibrate" else "test"
        p.add_argument("--split", default=split, help=f"qrels split (default {split})")
        p.add_argument("--max-queries", type=_positive_int,
                       help="evaluate a random subset of queries (quick runs); calibrate fits on them and also "
                            "reports the ECE on the split's other queries")
        p.add_argument("--max-docs", type=_positive_int, help="cut the corpus to the relevant docs plus random others, this many in all")
        p.add_argument("--alpha", type=float,
                       help="dense weight of :hybrid rows, in [0, 1] (default: the model's fitted weight if it carries one, else ragcun.store.fusion's, 0.8 with fixed floors)")
        p.add_argument("--seed", type=int, default=0, help="seed of the --max-queries / --max-docs draw (default 0)")
        _add_common(p)
        if name == "calibrate":
            p.add_argument("--judgements", type=Path, metavar="CSV",
                           help="fit on a judgement CSV filled in after 'ragcun-eval judge' instead of qrels; "
                                "then DATA is the judged CORPUS and QUERIES")
            p.add_argument("--calibrator-only", action="store_true",
                           help="write only relevance_calibrator.json into --output (default: the whole model)")
    p = sub.add_parser("judge", help="write the top-10 hits of sampled queries to a CSV to judge by hand "
                                     "(then: calibrate CORPUS QUERIES --judgements CSV)")
    p.add_argument("data_dir", nargs=2, metavar="PATH",
                   help="CORPUS (BEIR folder, JSONL, text file or folder of .txt/.md) and QUERIES (JSONL or text file)")
    p.add_argument("--queries", type=_positive_int, default=50, help="queries to sample (default 50; all if fewer)")
    p.add_argument("--seed", type=int, default=0, help="seed of the query draw (default 0)")
    _add_common(p)
    p = sub.add_parser("isotropy", help="isotropy metrics side by side (CSV) and plots")
    p.add_argument("--texts", required=True, help="a text file (one text per line) or a BEIR folder (its corpus)")
    p.add_argument("--max-texts", type=_positive_int,
                   help="use a random sample of this many texts (default: all, which reuses a BEIR corpus's cached embeddings)")
    _add_common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ragcun-eval`` console script."""
    args = build_parser().parse_args(argv)
    from importlib.util import find_spec

    if find_spec("matplotlib") is None:
        print('ragcun-eval: error: matplotlib not installed: pip install "ragcun[train]"', file=sys.stderr)
        return 2
    from ragcun_eval.claims import verdict_lines
    from ragcun_eval.models import Embedder, parse_model_spec

    try:
        default = "gaussian" if args.command in ("calibrate", "judge") else "bundled"  # calibration needs L2
        specs = [parse_model_spec(m) for m in (args.model or [default])]
        embedder = Embedder(args.cache_dir, device=args.device, batch_size=args.batch_size)
        if args.command == "isotropy":
            from ragcun_eval.isotropy_report import run_isotropy

            print(run_isotropy(specs, args.texts, embedder, args.output or Path("isotropy"), args.max_texts))
            return 0
        if args.command == "judge" or (args.command == "calibrate" and args.judgements is not None):
            if len(specs) != 1:
                raise ValueError(f"{args.command} takes one --model; got {len(specs)}")
            print((judge_output if args.command == "judge" else judged_output)(args, specs[0], embedder))
            return 0
        whole = load_datasets(args.data_dir, args.split)
        datasets = cut_datasets(whole, args.split, args.max_queries, args.max_docs, args.seed)
        runs = run_all(datasets, specs, embedder, args.alpha)
        if args.command == "calibrate":
            held_out = [w.without_queries(d) for w, d in zip(whole, datasets)] if args.max_docs is None else []
            print(calibrate_output(runs, datasets, args.split, args.output, embedder, args.calibrator_only, held_out))
            return 0
        print(retrieval_outputs(runs, args.output))
        if args.command == "claims":
            print("\n".join(verdict_lines(claims_outputs(runs, datasets, args.output, embedder))))
    except (OSError, ValueError) as exc:
        print(f"ragcun-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0
