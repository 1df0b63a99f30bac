"""Atomic, checksummed save directories: files plus a ``manifest.json`` (never pickle).

A save is written into a temporary sibling directory and renamed into place, so a crash mid-save
leaves any previous copy intact. ``manifest.json`` records the format name and version, caller
metadata (dimension, count, ...) and the size and SHA-256 of every file; :func:`read_manifest`
verifies all of it and raises errors that name the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

MANIFEST = "manifest.json"


class SaveFormatError(ValueError):
    """A saved directory is corrupt, truncated, tampered with or of the wrong kind/version."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_save(target: str | os.PathLike, kind: str, version: int,
                write: Callable[[Path], dict[str, Any]]) -> Path:
    """Run ``write(tmp_dir)`` (returns manifest metadata), checksum its files, then swap into ``target``."""
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        meta = write(tmp)
        files = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"format": kind, "format_version": version, **meta, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_manifest(source: str | os.PathLike, kind: str, version: int) -> dict[str, Any]:
    """Verify the save in ``source`` (kind, version, every file's size and checksum); return its manifest."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no saved {kind} directory here")
    path = source / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest missing; {source} is not a complete {kind} save")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SaveFormatError(f"{path}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != kind:
        raise SaveFormatError(f"{path}: expected a {kind!r} save, found {manifest.get('format')!r}"
                              if isinstance(manifest, dict) else f"{path}: manifest is not an object")
    if manifest.get("format_version") != version:
        raise SaveFormatError(f"{path}: unsupported format_version {manifest.get('format_version')!r}"
                              f" (this ragcun reads version {version})")
    for name, info in manifest.get("files", {}).items():
        file = source / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: listed in the manifest but missing")
        size = file.stat().st_size
        if size != info["bytes"]:
            raise SaveFormatError(f"{file}: truncated or altered ({size} bytes, manifest says {info['bytes']})")
        if _sha256(file) != info["sha256"]:
            raise SaveFormatError(f"{file}: checksum mismatch; the file was modified or corrupted")
    return manifest


def read_json(path: Path) -> Any:
    """Load a JSON file of a verified save, naming the file on failure."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SaveFormatError(f"{path}: not valid JSON ({exc})") from exc
