"""What one stored document costs in memory: a ``DocStore`` (default index, BM25) at ≥ 100k real passages.

The passages of ``benchmarks.real_corpus`` (no metadata, as a plain chunker would give) with random
384-d float32 vectors (memory does not depend on what the vectors mean), added 10,000 at a time to
``DocStore()``: its default ``L2Index(factory="auto")`` switches from exact to HNSW at its threshold.

How it is measured:

- Python objects: ``tracemalloc`` while the store is built, grouped by the module that allocated
  them: ``doc_store.py`` (records and their metadata dicts, the id -> record map),
  ``index/lexical/bm25.py`` (BM25 postings, vocabulary, id maps), ``index/faiss_l2.py`` (its id maps); numpy arrays
  count where they were made. The texts are the corpus's own string objects (the store keeps
  references, not copies): counted as ``sys.getsizeof`` of each.
- FAISS (C++, invisible to tracemalloc): the serialised index (vectors, HNSW graph, levels, the
  ``IndexIDMap2`` id list) plus the ``IndexIDMap2`` reverse map, which is not serialised: measured as
  the resident-memory growth of filling a 1-d ``IndexIDMap2`` with as many ids, less its vectors and
  id list, in a fresh process (so no freed heap hides the growth). The process's resident growth is printed too, as an upper bound (freed heap stays resident).
- Peak: the largest resident size (``ru_maxrss``), reached while the index switches to HNSW (the
  live vectors are copied out and re-added).

Feeds ``docs/scaling.md`` ("What a stored document costs") and the README's "Scaling out" section.
Run from the repository root: python -m benchmarks.memory [--n N]
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import faiss
import numpy as np

from benchmarks import real_corpus
from benchmarks.common import print_table
from ragcun.index.faiss_l2 import L2Index
from ragcun.store.doc_store import DocStore, Record

GIB = 1 << 30
BUDGET = 8 * GIB
MODULES = {"doc_store.py": "records + metadata + id map (DocStore)", "bm25.py": "BM25 index (lexical)",
           "faiss_l2.py": "id maps (L2Index)"}


def rss() -> int:
    """Resident set size of this process, bytes (Linux ``/proc/self/statm``)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


_REV_MAP = """
import resource, sys
from pathlib import Path
import faiss, numpy as np
n = int(sys.argv[1])
x, ids = np.zeros((n, 1), np.float32), np.arange(n, dtype=np.int64)
def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()
before = rss()
index = faiss.IndexIDMap2(faiss.IndexFlatL2(1))
index.add_with_ids(x, ids)
print(rss() - before)
"""


def rev_map_bytes(n: int) -> float:
    """Measured bytes per id of an ``IndexIDMap2``'s reverse map (``std::unordered_map``) holding ``n`` ids."""
    out = subprocess.run([sys.executable, "-c", _REV_MAP, str(n)], capture_output=True, text=True, check=True)
    return max(int(out.stdout.split()[-1]) - n * (4 + 8), 0) / n


def main() -> None:
    """Build the store, print the bytes per document per part and the largest store that fits in 8 GiB."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="documents (default: the whole corpus)")
    args = parser.parse_args()
    if not real_corpus.available():
        raise SystemExit(f"shared data not found under {real_corpus.SHARED}")
    corpus = real_corpus.build()
    n = min(args.n or len(corpus.ids), len(corpus.ids))
    records = [Record(i, t) for i, t in zip(corpus.ids[:n], corpus.texts[:n])]
    vectors = np.random.default_rng(0).standard_normal((n, 384), dtype=np.float32)
    text_bytes = sum(sys.getsizeof(t) for t in corpus.texts[:n])
    gc.collect()
    rss0 = rss()
    tracemalloc.start()
    t = time.perf_counter()
    store = DocStore()
    for s in range(0, n, 10_000):
        store.add(records[s:s + 10_000], vectors[s:s + 10_000])
    build_s = time.perf_counter() - t
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    traced, peak_traced = tracemalloc.get_traced_memory()
    overhead = tracemalloc.get_tracemalloc_memory()
    tracemalloc.stop()
    rss1 = rss()
    index = store.index
    assert isinstance(index, L2Index)
    by_module = {name: 0 for name in MODULES}
    for stat in snapshot.statistics("filename"):
        name = Path(stat.traceback[0].filename).name
        if name in by_module:
            by_module[name] += stat.size
    serialised = len(faiss.serialize_index(index._index))
    rev = rev_map_bytes(n)
    rows = [("vector + HNSW graph + id list (FAISS, serialised)", serialised),
            ("IndexIDMap2 reverse map (FAISS, measured)", rev * n),
            *((MODULES[m], b) for m, b in by_module.items()),
            ("texts (str objects)", text_bytes),
            ("other Python objects (traced)", traced - sum(by_module.values()))]
    total = sum(b for _, b in rows)
    print(f"DocStore(): {n:,} documents ({index.target_factory if index.approximate else 'Flat'} "
          f"after the switch at {index.threshold:,}), 384-d float32, BM25; built in {build_s:.0f} s "
          f"(under tracemalloc)")
    print(f"mean text {text_bytes / n:.0f} B as str; no metadata\n")
    print_table([{"part": name, "bytes/doc": round(b / n), "share %": 100 * b / total} for name, b in rows]
                + [{"part": "total", "bytes/doc": round(total / n), "share %": 100.0}])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\n(raw vector {4 * 384} B) process RSS growth {(rss1 - rss0 - overhead) / n:.0f} B/doc "
          f"(tracemalloc's own use excluded); peak RSS {peak / GIB:.2f} GiB, imports and corpus included "
          f"(Python traced peak {peak_traced / n:.0f} B/doc, during the switch to HNSW)")
    grown = (rss1 - rss0 - overhead) / n
    print(f"largest store in 8 GiB: ~{BUDGET / (total / n) / 1e6:.1f} M documents by the parts ({total / n:.0f} B/doc), "
          f"~{BUDGET / grown / 1e6:.1f} M by resident growth ({grown:.0f} B/doc, allocator slack included); "
          f"the switch to HNSW needs the vectors once more ({4 * 384} B/doc) while it runs")


if __name__ == "__main__":
    main()
