"""What every benchmark shares: where the shared data is, fair timing, recall against exact search, tables.

The benchmarks are a package run from the repository root, ``python -m benchmarks.search`` (see
``benchmarks/README.md``), so they import each other as ``benchmarks.<name>`` with no ``sys.path`` edits.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragcun_eval.report import markdown_table

REPO = Path(__file__).resolve().parents[1]
#: The project's read-only data folder, beside the repository (``../shared``).
SHARED = REPO.parent / "shared"
SCIFACT = SHARED / "data" / "beir" / "scifact"
NQ_PAIRS = SHARED / "data" / "train" / "qed_nq_xquad_en" / "pairs.jsonl"


def require(path: Path) -> Path:
    """``path`` if it exists; otherwise exit with a message naming it and the ``../shared`` folder."""
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks read the project's shared/ folder beside the repository")
    return path


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Timing:
    """Seconds per item of one timed pass over several rounds: the best round and the median one."""

    best: float
    median: float

    @property
    def best_ms(self) -> float:
        """The best round, in milliseconds per item."""
        return self.best * 1e3

    @property
    def median_ms(self) -> float:
        """The median round, in milliseconds per item."""
        return self.median * 1e3


def interleaved(passes: Mapping[str, Callable[[], object]], rounds: int, items: int = 1) -> dict[str, Timing]:
    """Time every pass ``rounds`` times, the passes taken in turn within each round, after one warm-up each.

    Interleaving puts every pass under the same load: on a shared machine a load spike slows one round of
    each rather than all rounds of one; the order rotates from round to round, so no pass always runs
    first. ``items`` is how many operations (queries, say) one pass does; the timings are per item.
    """
    if rounds < 1 or items < 1:
        raise ValueError(f"rounds and items must be >= 1, got {rounds} and {items}")
    for run in passes.values():
        run()
    names = list(passes)
    taken: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            taken[name].append(seconds(passes[name]) / items)
    return {name: Timing(min(t), statistics.median(t)) for name, t in taken.items()}


def recall_at_k(found: Sequence[Sequence[object]], exact: Sequence[Sequence[object]]) -> float:
    """Recall@k of ``found`` against ``exact`` results: the share of exact neighbours found, over all queries.

    Rows are queries, ``k`` ids wide (integers or strings). Unlike ``faiss.contrib.evaluation``'s
    ``knn_intersection_measure`` (integer tables only), ``None`` ids (ragcun's padding of a short result)
    count as misses, never as matches.
    """
    if len(found) != len(exact):
        raise ValueError(f"{len(found)} result rows against {len(exact)} exact rows")
    hits = sum(len({i for i in f if i is not None} & {i for i in e if i is not None}) for f, e in zip(found, exact))
    return hits / sum(len(e) for e in exact)


def print_table(rows: Sequence[Mapping[str, object]], title: str | None = None,
                columns: Sequence[str] | None = None) -> None:
    """Print ``rows`` as one Markdown table (floats to 4 decimals), after an optional title line."""
    if title:
        print(f"\n{title}\n")
    print(markdown_table([dict(r) for r in rows], columns))
