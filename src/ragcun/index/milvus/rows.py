"""Reading a Milvus collection's rows with Strong consistency: by id in batches, every id by scan, the row count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragcun.index.milvus.filters import ID_FIELD, id_expression

if TYPE_CHECKING:
    from pymilvus import MilvusClient

QUERY_BATCH = 1_000
"""Ids per ``id in [...]`` query, delete or lexical scoring search."""
SCAN_BATCH = 10_000
"""Ids per page when scanning every id."""


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items``, ``size`` long (the last shorter)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def fetch_rows(client: MilvusClient, collection: str, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rows (``fields`` plus ``id``) of those ``ids`` that exist, keyed by id."""
    rows: dict[str, dict[str, Any]] = {}
    for batch in batches(ids, QUERY_BATCH):
        for row in client.query(collection, filter=id_expression(batch),
                                output_fields=[ID_FIELD, *fields], consistency_level="Strong"):
            rows[row[ID_FIELD]] = row
    return rows


def count_rows(client: MilvusClient, collection: str) -> int:
    """The number of rows ``collection`` holds (exact, deletes included)."""
    rows = client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


def id_counts(client: MilvusClient, collection: str) -> Counter[str]:
    """How many stored rows hold each id (one each in a consistent collection): one scan of every id."""
    counts: Counter[str] = Counter()
    pages = client.query_iterator(collection, batch_size=SCAN_BATCH, filter="", output_fields=[ID_FIELD])
    try:
        while rows := pages.next():
            counts.update(row[ID_FIELD] for row in rows)
    finally:
        pages.close()
    return counts
