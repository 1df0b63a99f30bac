"""Milvus Lite files: a consistent view after a process is killed mid-insert, and the install hint without Milvus Lite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason='Milvus tests need the extra: pip install "ragcun[milvus]"')
pytest.importorskip("milvus_lite", reason='Milvus tests need Milvus Lite: pip install "ragcun[milvus]"')

from pymilvus import MilvusClient  # noqa: E402

from ragcun.index.milvus.index import MilvusL2Index  # noqa: E402
from ragcun.index.milvus.lite import unflushed_log  # noqa: E402

DIM = 32
BATCH = 200

# Inserts batches of BATCH rows (with texts) forever, printing each acknowledged batch number.
# With RAGCUN_TEST_DIE_IN_FLUSH set it flushes after 6 batches and kills itself inside Milvus Lite's
# flush, after the segment is committed and before the write-ahead log is deleted.
_INSERTER = textwrap.dedent(f"""
    import os, signal, sys
    import numpy as np
    from ragcun.index.milvus.index import MilvusL2Index
    if os.environ.get("RAGCUN_TEST_DIE_IN_FLUSH"):
        from milvus_lite.storage.wal import WAL
        WAL.close_and_delete = lambda self: os.kill(os.getpid(), signal.SIGKILL)
    index = MilvusL2Index(sys.argv[1], dim={DIM})
    rng = np.random.default_rng(0)
    batch = 0
    while True:
        ids = [f"d{{batch * {BATCH} + i}}" for i in range({BATCH})]
        index.add(ids, rng.standard_normal(({BATCH}, {DIM})).astype(np.float32),
                  texts=[f"document number {{i}} about topic{{int(i[1:]) % 7}}" for i in ids])
        print(batch, flush=True)
        batch += 1
        if batch == 6 and os.environ.get("RAGCUN_TEST_DIE_IN_FLUSH"):
            index.flush()
""")


def _run_inserter(path: str, acked_batches: int, die_in_flush: bool) -> int:
    """Start the inserter, SIGKILL it once ``acked_batches`` batches are acknowledged (or let it die); acked count."""
    env = dict(os.environ, RAGCUN_TEST_DIE_IN_FLUSH="1" if die_in_flush else "")
    proc = subprocess.Popen([sys.executable, "-c", _INSERTER, path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    acked = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked = int(line) + 1
            if acked >= acked_batches and not die_in_flush:
                time.sleep(0.05)  # into the next upsert
                proc.send_signal(signal.SIGKILL)
                break
        assert proc.wait(timeout=120) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return acked


def _check_consistent(path: str, acked: int, extra: tuple[str, ...] = ()) -> None:
    """Reopened: count = distinct ids = ids a full query returns, every acknowledged id present, full searches."""
    with MilvusL2Index(path) as index:
        count = index.count
        queries = np.random.default_rng(7).standard_normal((3, DIM)).astype(np.float32)
        for k in (1, 10, count // 2, count):
            ids, _ = index.search(queries, k)
            for row in ids:
                assert None not in row and len(set(row)) == k, f"search k={k} returned {len(set(row))} distinct ids"
        found, _ = index.lexical_search("topic3", count)
        assert len(set(found)) == len(found) == sum(1 for i in range(count - len(extra)) if i % 7 == 3)
    client = MilvusClient(path)  # a raw client sees the repaired file too
    try:
        client.load_collection("ragcun")
        pages = client.query_iterator("ragcun", batch_size=1000, filter="", output_fields=["id"])
        stored: list[str] = []
        while rows := pages.next():
            stored += [row["id"] for row in rows]
        pages.close()
    finally:
        client.close()
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(os.path.abspath(path))
    assert len(stored) == len(set(stored)) == count
    batches = count - len(extra)
    assert set(stored) == {f"d{i}" for i in range(batches)} | set(extra)  # batches land whole, in order
    assert batches >= acked * BATCH and batches % BATCH == 0


def test_kill_mid_insert_reopens_consistent(tmp_path):
    path = str(tmp_path / "killed.db")
    acked = _run_inserter(path, 6, die_in_flush=False)
    assert acked >= 6
    _check_consistent(path, acked)


def test_kill_inside_flush_does_not_duplicate_rows(tmp_path):
    """Killed after a flush committed its segment but before it deleted the log: replayed rows counted twice.

    Before reconciliation on open, this file reopened with count 2,400 for 1,200 ids and every
    search returned each hit twice (5 distinct ids of 10).
    """
    path = str(tmp_path / "flush-killed.db")
    acked = _run_inserter(path, 6, die_in_flush=True)
    assert acked == 6
    assert unflushed_log(os.path.abspath(path), "ragcun")
    _check_consistent(path, acked)
    assert not unflushed_log(os.path.abspath(path), "ragcun")


def test_rows_left_twice_after_replay_are_stored_once(tmp_path):
    """A crashed file reopened and written by another client, which dies too: its flush writes the replayed
    rows into a new segment beside the committed one, so they stay duplicated until re-upserted."""
    path = str(tmp_path / "twice.db")
    acked = _run_inserter(path, 6, die_in_flush=True)
    script = textwrap.dedent(f"""
        import os, signal
        from pymilvus import MilvusClient
        client = MilvusClient({path!r})
        client.load_collection("ragcun")
        client.insert("ragcun", [{{"id": "extra", "vector": [0.5] * {DIM}, "metadata": {{}}, "stems": "extra"}}])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    _check_consistent(path, acked, extra=("extra",))


def test_clean_close_leaves_no_log(tmp_path):
    path = str(tmp_path / "clean.db")
    with MilvusL2Index(path, dim=DIM) as index:
        index.add(["a", "b"], np.ones((2, DIM), dtype=np.float32), texts=["x", "y"])
        index.remove(["a"])
    assert not unflushed_log(os.path.abspath(path), "ragcun")


def test_missing_milvus_lite_gives_the_install_hint(tmp_path):
    """Without Milvus Lite, opening a .db file says what to install (not a ModuleNotFoundError from cleanup)."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["milvus_lite"] = None
        from ragcun.index.milvus.index import MilvusL2Index
        try:
            MilvusL2Index({str(tmp_path / "x.db")!r})
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, message = proc.stdout.strip().split(" | ", 1)
    assert name == "ImportError", proc.stdout
    assert "pip install milvus-lite" in message and "milvus-lite is required" in message
    assert not Path(tmp_path / "x.db").exists()
