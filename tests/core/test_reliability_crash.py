"""A save killed after any filesystem call leaves the old or the new complete copy loadable (issue 12, item 2).

Each save runs in a forked child that counts its filesystem calls (renames, directory and file
creation and removal, fsyncs, FAISS writes) and ``os._exit``s right after the n-th one, for every
n; the parent then loads what is on disk. It must be exactly the previous or the new content, and
the next save must succeed and leave nothing behind.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

from ragcun.store.doc_store import DocStore, Record

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to kill a saver mid-save")

HOOKED = [(os, "replace"), (os, "rename"), (os, "mkdir"), (os, "rmdir"), (os, "unlink"), (os, "fsync"),
          (io, "open"), (faiss, "write_index")]
KILLED = 9


def _save_in_child(save: Callable[[], object], kill_at: int) -> int | None:
    """Run ``save()`` in a forked child killed right after its ``kill_at``-th filesystem call
    (never if 0); return how many calls the save made, or ``None`` if the child was killed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        calls = [0]

        def hook(real: Callable) -> Callable:
            def counted(*args, **kwargs):
                result = real(*args, **kwargs)
                mode = kwargs.get("mode", args[1] if len(args) > 1 else "r")
                if real is not io.open or set("wax+") & set(str(mode)):  # reading changes nothing
                    calls[0] += 1
                    if calls[0] == kill_at:
                        os._exit(KILLED)
                return result
            return counted

        try:
            for module, name in HOOKED:
                setattr(module, name, hook(getattr(module, name)))
            save()
            os.write(write_end, struct.pack("q", calls[0]))
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    data = os.read(read_end, 8)
    os.close(read_end)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, KILLED), f"the saver failed (exit code {code}) at kill point {kill_at}"
    return struct.unpack("q", data)[0] if code == 0 else None


def _store(version: int) -> DocStore:
    """A store whose content identifies ``version`` (ids, texts, metadata and vectors differ)."""
    n = 3 + version
    store = DocStore()
    vecs = np.random.default_rng(version).standard_normal((n, 6)).astype(np.float32)
    store.add([Record(f"v{version}-{i}", f"text {version}.{i}", {"version": version}) for i in range(n)], vecs)
    return store


def _content(store: DocStore) -> tuple:
    query = np.ones(6, dtype=np.float32)
    return ([(r.id, r.text, r.metadata) for r in store.find()], store.index.count,
            [h.record.id for h in store.search(query, 3)])


def _loaded(path: Path) -> tuple | None:
    """The content loaded from ``path``, or ``None`` where there is no save at all."""
    try:
        return _content(DocStore.load(path)[0])
    except FileNotFoundError:
        return None


def _kill_points(save: Callable[[], object], prepare: Callable[[], object] = lambda: None) -> range:
    """1 .. the number of filesystem calls ``save()`` makes after ``prepare()``."""
    prepare()
    total = _save_in_child(save, 0)
    assert total is not None and total > 10
    return range(1, total + 1)


def test_killed_save_leaves_the_old_or_the_new_copy(tmp_path: Path) -> None:
    target = tmp_path / "store"
    old, new, later = _store(1), _store(2), _store(3)
    expect_old, expect_new, expect_later = _content(old), _content(new), _content(later)
    outcomes = set()
    for n in _kill_points(lambda: new.save(target), lambda: old.save(target)):
        old.save(target)
        assert _save_in_child(lambda: new.save(target), n) is None
        got = _loaded(target)
        assert got in (expect_old, expect_new), f"kill after call {n}: loaded {got}"
        outcomes.add((got == expect_new, target.exists()))
        later.save(target)
        assert _loaded(target) == expect_later
        assert [p.name for p in tmp_path.iterdir()] == ["store"], f"leftovers after kill point {n}"
    # every case was met: old copy in place, old copy beside a missing target, new copy in place
    assert outcomes == {(False, True), (False, False), (True, True)}


def test_killed_first_save_leaves_nothing_or_the_new_copy(tmp_path: Path) -> None:
    target = tmp_path / "store"
    new = _store(2)
    for n in _kill_points(lambda: new.save(target)):
        assert _save_in_child(lambda: new.save(target), n) is None
        assert _loaded(target) in (None, _content(new)), f"kill after call {n}"
        new.save(target)
        assert _loaded(target) == _content(new)
        for p in list(tmp_path.iterdir()):
            shutil.rmtree(p)


def test_a_second_crash_while_recovering_still_loses_nothing(tmp_path: Path) -> None:
    """Kill a save between its two renames, then kill the next save at every point."""
    target = tmp_path / "store"
    old, new, later = _store(1), _store(2), _store(3)
    between = None
    for n in _kill_points(lambda: new.save(target), lambda: old.save(target)):
        old.save(target)
        _save_in_child(lambda: new.save(target), n)
        if not target.exists():
            between = n
            break
    assert between is not None, "no kill point left the target missing"
    def crash_between() -> None:
        old.save(target)
        _save_in_child(lambda: new.save(target), between)

    for m in _kill_points(lambda: later.save(target), crash_between):
        old.save(target)
        _save_in_child(lambda: new.save(target), between)
        assert _loaded(target) == _content(old)
        assert _save_in_child(lambda: later.save(target), m) is None
        assert _loaded(target) in (_content(old), _content(later)), f"second kill after call {m}"
