"""Embedded Milvus Lite: which URIs it serves, its per-file server and lock, and crash leftovers.

pymilvus serves a URI ending in ``.db`` (a local directory) from an in-process Milvus Lite server
that holds a lock on the directory, so a second process cannot open it until this one stops the
server. :func:`acquire` / :func:`release` count the ``MilvusL2Index`` users of each file in this
process and stop its server when the last one closes. :func:`unflushed_log` tells whether a
collection's write-ahead log was left behind by a process that did not close it (a crash).
"""

from __future__ import annotations

import glob
import os
import threading

LITE_HINT = ('a Milvus Lite ".db" file needs the milvus-lite package: pip install milvus-lite '
             '(or pip install "ragcun[milvus]")')
"""What to install when Milvus Lite is missing."""

_lock = threading.Lock()
_users: dict[str, int] = {}


def is_lite_uri(uri: str) -> bool:
    """Whether pymilvus serves ``uri`` with embedded Milvus Lite (a local path ending in ``.db``)."""
    return uri.endswith(".db")


def require_lite() -> None:
    """Raise ``ImportError`` saying what to install (pymilvus's own hint included) when Milvus Lite is missing."""
    try:
        import milvus_lite.server_manager  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{LITE_HINT} (pymilvus: milvus-lite is required for local database "
                          f"connections; {exc})") from exc


def acquire(path: str) -> bool:
    """Count one more user of the Lite file ``path`` in this process; ``True`` if it is the first."""
    with _lock:
        _users[path] = _users.get(path, 0) + 1
        return _users[path] == 1


def release(path: str) -> None:
    """Count one user less of ``path``; the last one stops its embedded server, freeing the file lock."""
    with _lock:
        users = _users.get(path, 0) - 1
        if users > 0:
            _users[path] = users
            return
        _users.pop(path, None)
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # never installed, so no server was started
        return
    server_manager_instance.release_server(path)


def unflushed_log(path: str, collection: str) -> bool:
    """Whether ``collection`` in the Lite file ``path`` has write-ahead-log files on disk.

    A clean close flushes the log into segments and deletes it, so leftovers mean the last
    process serving the file died; Milvus Lite replays them when it opens the collection. Only
    meaningful before this process serves the file.
    """
    pattern = os.path.join(glob.escape(path), "**", "collections", glob.escape(collection), "wal", "wal_*.arrow")
    return any(os.path.getsize(f) > 0 for f in glob.glob(pattern, recursive=True))
