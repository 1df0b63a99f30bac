"""Crash recovery of a Milvus Lite collection: rows that a replayed write-ahead log stored twice are made single again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragcun.index.milvus.rows import batches, count_rows, fetch_rows, id_counts

if TYPE_CHECKING:
    from pymilvus import MilvusClient


def reconcile(client: MilvusClient, collection: str, fields: list[str], batch_size: int, where: str) -> None:
    """Make a Milvus Lite collection consistent after its last process died (called on open).

    Milvus Lite replays the write-ahead log left on disk, so every acknowledged write is back
    (and possibly the one in flight). A crash after a flush committed its segment but before
    it deleted the log replays rows the segment already holds, with the same sequence numbers:
    Milvus Lite then counts them twice and a search returns each twice (5 ids where 10 were
    asked). Flushing rewrites the replayed rows into that same segment; any id still stored
    twice is re-upserted (its ``fields``, in batches of ``batch_size``) so one version supersedes
    the copies. Costs one scan of the ids.
    """
    client.flush(collection)
    duplicated = [i for i, n in id_counts(client, collection).items() if n > 1]
    if not duplicated:
        return
    rows = fetch_rows(client, collection, duplicated, fields)
    for batch in batches(list(rows.values()), batch_size):
        client.upsert(collection, [{f: row[f] for f in fields} for row in batch])
    client.flush(collection)
    if count_rows(client, collection) != len(id_counts(client, collection)):
        raise RuntimeError(f"{where}: rows are still duplicated after crash recovery; "
                           "re-create the collection from the saved store")
