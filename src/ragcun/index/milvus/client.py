"""Connecting ``MilvusL2Index`` to Milvus: pymilvus imported on first use, a client for a server or a Milvus Lite file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ragcun.index.milvus import lite as milvus_lite

if TYPE_CHECKING:
    from pymilvus import MilvusClient

INSTALL_HINT = 'MilvusL2Index needs pymilvus: pip install "ragcun[milvus]"'
"""What to install when pymilvus is missing."""


def pymilvus_module() -> Any:
    """Import pymilvus, or raise ``ImportError`` saying how to install it."""
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return pymilvus


def connect(uri: str, collection: str, lite_path: str | None, token: str, timeout: float | None,
            where: str) -> tuple[MilvusClient, bool]:
    """A client for ``uri`` and, for a Milvus Lite file (``lite_path``), whether a crashed process left
    ``collection``'s log behind; ``ConnectionError`` naming ``where`` when it cannot connect.

    A Lite file counts one more user (:func:`ragcun.index.milvus.lite.acquire`) once connected.
    """
    pymilvus = pymilvus_module()
    crashed = False
    if lite_path:
        milvus_lite.require_lite()
        parent = os.path.dirname(lite_path)
        if not os.path.isdir(parent):
            raise ConnectionError(f"cannot open {where}: directory {parent!r} does not exist")
        first = milvus_lite.acquire(lite_path)
        crashed = first and milvus_lite.unflushed_log(lite_path, collection)
    try:
        return pymilvus.MilvusClient(uri=uri, token=token, timeout=timeout), crashed
    except Exception as exc:
        if lite_path:
            milvus_lite.release(lite_path)
        hint = (" (a Milvus Lite file is served by one process at a time: close the other"
                " MilvusL2Index or client using it)" if lite_path else "")
        raise ConnectionError(f"cannot connect to {where}: {exc}{hint}") from exc
