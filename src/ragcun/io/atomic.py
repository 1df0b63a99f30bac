"""Atomic file writes: the one primitive every file ragcun writes in place goes through.

A file is written to a temporary sibling, flushed to disk, then renamed over its target, so a reader
(or a crash) sees the old file or the new one, never a part of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The path of an empty temporary sibling of ``path``, for writers that take a file name (``safetensors``'
    ``save_file``); renamed over ``path`` once the block ends without error and its content is on disk; removed
    if the block fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """An open temporary sibling of ``path`` (``mode`` ``"w"``: UTF-8 text, ``"wb"``: bytes), renamed over
    ``path`` once the block ends without error and its content is on disk; removed if the block fails
    (:func:`atomic_path`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, encoding="utf-8" if mode == "w" else None) as f:
        yield f


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as f:
        json.dump(obj, f, indent=2, allow_nan=True)
