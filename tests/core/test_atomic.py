"""ragcun.io.atomic: a file written in place is the old one or the new one, never a part; no temporary is left."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ragcun.io.atomic import atomic_file, atomic_path, write_json_atomic


def test_a_finished_block_replaces_the_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    with atomic_file(target) as f:
        f.write("new ü")
        assert target.read_text(encoding="utf-8") == "old"  # not visible before the block ends
    assert target.read_text(encoding="utf-8") == "new ü" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with atomic_file(target, "wb") as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_a_failed_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    write_json_atomic(target, {"x": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(target) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert json.loads(target.read_text(encoding="utf-8")) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_path_serves_writers_that_take_a_file_name(tmp_path):
    target = tmp_path / "t.safetensors"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        save_file({"x": np.arange(3, dtype=np.float32)}, tmp)
    assert np.array_equal(load_file(target)["x"], np.arange(3)) and [p.name for p in tmp_path.iterdir()] == [target.name]
    with pytest.raises(ValueError, match="nope"), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("nope")
    assert np.array_equal(load_file(target)["x"], np.arange(3)) and len(list(tmp_path.iterdir())) == 1


def test_an_unknown_mode_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="mode must be"), atomic_file(tmp_path / "x", "a"):
        pass
    assert not list(tmp_path.iterdir())
