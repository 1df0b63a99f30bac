"""Where the repository and the project's shared data are, for tests in every subfolder.

Importable as ``repo_paths`` because ``pyproject.toml`` puts ``tests/`` on pytest's ``pythonpath``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the project's shared/ folder beside the repository")
    return path


def scifact_slice(root: Path, max_queries: int, max_docs: int) -> Path:
    """A BEIR folder at ``root`` holding ``max_queries`` SciFact test queries over a ``max_docs``-document corpus."""
    import json

    from ragcun_eval.beir import load_beir

    data = load_beir(shared_path("data", "beir", "scifact")).subset(max_queries=max_queries, max_docs=max_docs)
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n"
                                               for d, t in zip(data.doc_ids, data.doc_texts)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in data.queries.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, rel in data.qrels.items() for d, s in rel.items()))
    return root
