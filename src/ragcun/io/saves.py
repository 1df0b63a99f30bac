"""Atomic, checksummed save directories: files plus a ``manifest.json`` (never pickle).

A save is written into a temporary sibling directory ``.X.tmp-*``, flushed to disk, and swapped
into place: the previous copy is first renamed to ``.X.old-*/previous``, then the new directory
to ``X``, then the old copy is deleted. A crash (even ``kill -9``) at any point leaves a loadable
copy: either ``X`` itself or, if the crash came between the two renames, the previous copy in
``.X.old-*/previous``, which :func:`read_save` loads in its place and the next save moves back
before anything else. A ``.X.tmp-*`` directory is never loaded (the save it belongs to did not
finish) and the next save deletes it. Saves into one parent directory are serialised by a lock on it;
a load that runs while another thread or process saves to the same path is not (serialise them).

``manifest.json`` records the format name and version, caller metadata (dimension, count, ...),
the size and SHA-256 of every file and the SHA-256 of its own canonical content
(``manifest_sha256``); :func:`read_manifest` verifies all of it and the types of the caller's
fields, and raises errors that name the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: saves are serialised within this process only
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
CHECKSUM = "manifest_sha256"
_LOCAL_LOCK = threading.RLock()

FieldTypes = Mapping[str, tuple[type, ...]]
"""Required manifest fields and their allowed types (``int`` never admits ``bool``)."""


class SaveFormatError(ValueError):
    """A saved directory is corrupt, truncated, tampered with or of the wrong kind/version."""


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of ``manifest`` without its ``manifest_sha256`` field."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")).hexdigest()


def _fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames, new files) to disk where the platform allows it."""
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` (and ``root``) to disk."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(root)


@contextlib.contextmanager
def _save_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock on ``directory`` while a save swaps entries in it: across threads and processes where
    the file system has ``flock``, else within this process."""
    fd: int | None = os.open(directory, os.O_RDONLY) if fcntl is not None else None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # no flock on this file system
                os.close(fd)
                fd = None
        with contextlib.nullcontext() if fd is not None else _LOCAL_LOCK:
            yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _leftovers(target: Path) -> list[Path]:
    """The ``.X.tmp-*`` and ``.X.old-*`` siblings that saves to ``target`` create, sorted by name."""
    prefixes = (f".{target.name}.tmp-", f".{target.name}.old-")
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefixes))


def _previous_copy(target: Path) -> Path | None:
    """The previous copy a save interrupted between its two renames left (``None`` if there is none)."""
    found = [p / "previous" for p in _leftovers(target)
             if p.name.startswith(f".{target.name}.old-") and (p / "previous" / MANIFEST).is_file()]
    if len(found) > 1:
        raise SaveFormatError(f"{target}: missing, and several previous copies are left beside it "
                              f"({', '.join(str(p) for p in found)}); move the one to keep to {target}")
    return found[0] if found else None


def _settle(target: Path) -> None:
    """Restore an interrupted save's previous copy to ``target`` if it is missing, then delete all leftovers."""
    if not target.exists():
        previous = _previous_copy(target)
        if previous is not None:
            os.rename(previous, target)
            _fsync_dir(target.parent)
    for path in _leftovers(target):
        shutil.rmtree(path, ignore_errors=True)


def atomic_save(target: str | os.PathLike, kind: str, version: int,
                write: Callable[[Path], dict[str, Any]]) -> Path:
    """Run ``write(tmp_dir)`` (returns manifest metadata), checksum its files, then swap into ``target``.

    A crash at any point leaves the previous or the new complete copy loadable (module docstring).
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _save_lock(target.parent):
        _settle(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            meta = write(tmp)
            files = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            manifest = {"format": kind, "format_version": version, **meta, "files": files}
            manifest[CHECKSUM] = manifest_checksum(manifest)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            _fsync_tree(tmp)
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.replace(target, old / "previous")
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                _settle(target)  # puts the previous copy back if it was moved aside; deletes tmp
            raise
        _settle(target)
    return target


def _check_fields(path: Path, manifest: dict[str, Any], fields: FieldTypes) -> None:
    """Every field in ``fields`` is present with an allowed type; else ``SaveFormatError``."""
    for name, types in fields.items():
        if name not in manifest:
            raise SaveFormatError(f"{path}: field {name!r} is missing")
        value = manifest[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise SaveFormatError(f"{path}: field {name!r} has the wrong type ({type(value).__name__})")


def _check_files(path: Path, files: object) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` table, checked: relative names inside the save, each with a size and a SHA-256."""
    if not isinstance(files, dict):
        raise SaveFormatError(f"{path}: field 'files' must be an object")
    for name, info in files.items():
        parts = PurePosixPath(name).parts
        if not parts or parts[0] == "/" or ".." in parts or "\\" in name or ":" in name:
            raise SaveFormatError(f"{path}: file name {name!r} is not a plain relative path")
        if (not isinstance(info, dict) or set(info) != {"bytes", "sha256"} or isinstance(info["bytes"], bool)
                or not isinstance(info["bytes"], int) or not isinstance(info["sha256"], str)):
            raise SaveFormatError(f"{path}: entry for {name!r} must be {{'bytes': int, 'sha256': str}}")
    return files


def read_manifest(source: str | os.PathLike, kind: str, version: int,
                  fields: FieldTypes | None = None) -> dict[str, Any]:
    """Verify the save in directory ``source`` (manifest checksum, kind, version, ``fields``' types, every
    file's size and checksum); return its manifest.

    A manifest without ``manifest_sha256`` (written before ragcun checksummed it) is accepted if its
    keys are exactly the format's.
    """
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no saved {kind} directory here")
    path = source / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest missing; {source} is not a complete {kind} save")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SaveFormatError(f"{path}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise SaveFormatError(f"{path}: manifest is not an object")
    fields = dict(fields or {})
    if CHECKSUM in manifest:
        if manifest[CHECKSUM] != manifest_checksum(manifest):
            raise SaveFormatError(f"{path}: manifest checksum mismatch; the manifest was modified or corrupted")
    elif set(manifest) != (expected := {"format", "format_version", "files", *fields}):
        raise SaveFormatError(f"{path}: manifest has no checksum and other fields than a {kind} save: missing "
                              f"{sorted(expected - set(manifest))!r}, unexpected {sorted(set(manifest) - expected)!r}")
    if manifest.get("format") != kind:
        raise SaveFormatError(f"{path}: expected a {kind!r} save, found {manifest.get('format')!r}")
    if manifest.get("format_version") != version or isinstance(manifest.get("format_version"), bool):
        raise SaveFormatError(f"{path}: unsupported format_version {manifest.get('format_version')!r}"
                              f" (this ragcun reads version {version})")
    _check_fields(path, manifest, fields)
    for name, info in _check_files(path, manifest.get("files")).items():
        file = source / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: listed in the manifest but missing")
        size = file.stat().st_size
        if size != info["bytes"]:
            raise SaveFormatError(f"{file}: truncated or altered ({size} bytes, manifest says {info['bytes']})")
        if file_sha256(file) != info["sha256"]:
            raise SaveFormatError(f"{file}: checksum mismatch; the file was modified, corrupted or taken from "
                                  "another save")
    return manifest


def read_save(source: str | os.PathLike, kind: str, version: int,
              fields: FieldTypes | None = None) -> tuple[Path, dict[str, Any]]:
    """The directory holding the save at ``source`` and its verified manifest (:func:`read_manifest`).

    That is ``source`` itself or, where a save was interrupted between its two renames and
    ``source`` is missing, the previous copy it left in ``.X.old-*/previous``.
    """
    source = Path(source)
    if not source.exists():
        previous = _previous_copy(source.resolve())
        if previous is not None:
            source = previous
    return source, read_manifest(source, kind, version, fields)


def read_json(path: Path) -> Any:
    """Load a JSON file of a verified save, naming the file on failure."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SaveFormatError(f"{path}: not valid JSON ({exc})") from exc
