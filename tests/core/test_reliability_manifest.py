"""Damaged manifests and mismatched indexes are clear ``SaveFormatError``s (issue 12, items 4 and 5).

Every single-bit flip of a save's ``manifest.json`` must end in a ``SaveFormatError`` naming the
file (or a ``FileNotFoundError``), never another exception and never a load that differs from the
original.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragcun.index.faiss_l2 import L2Index
from ragcun.io.saves import SaveFormatError
from ragcun.store.doc_store import DocStore, Record


def _store(n: int = 40, prefix: str = "d", seed: int = 0) -> DocStore:
    """A store with an empirical score law (``n >= 32``), so the manifest holds a fitted ``dof``."""
    store = DocStore()
    vecs = np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)
    store.add([Record(f"{prefix}{i}", f"text {i}", {"i": i}) for i in range(n)], vecs)
    store.search(vecs[0], 3)  # fits the law
    assert store.scorer.law is not None and store.scorer.law.source == "empirical"
    return store


def _state(store: DocStore) -> tuple:
    hits = store.search(np.ones(4, dtype=np.float32), 5)
    return ([(r.id, r.text, r.metadata) for r in store.find()], store.scorer.to_dict(),
            [(h.record.id, h.distance, h.score) for h in hits])


def _flip_every_bit(path: Path, load) -> int:
    """Flip each bit of ``path`` in turn and call ``load()``; returns how many flips loaded (the same content)."""
    original = path.read_bytes()
    expected, loaded = load(), 0
    try:
        for pos in range(len(original)):
            for bit in range(8):
                damaged = bytearray(original)
                damaged[pos] ^= 1 << bit
                path.write_bytes(bytes(damaged))
                try:
                    got = load()
                except SaveFormatError as exc:
                    assert "manifest.json" in str(exc), exc
                    continue
                except FileNotFoundError:
                    continue
                assert got == expected, f"flip of bit {bit} of byte {pos} ({chr(original[pos])!r}) loaded other content"
                loaded += 1
    finally:
        path.write_bytes(original)
    return loaded


def test_every_bit_flip_of_a_doc_store_manifest_is_caught(tmp_path: Path) -> None:
    _store().save(tmp_path / "s")
    manifest = tmp_path / "s" / "manifest.json"
    assert json.loads(manifest.read_text())["scorer"]["law"]["dof"] > 0
    loaded = _flip_every_bit(manifest, lambda: _state(DocStore.load(tmp_path / "s")[0]))
    assert loaded < 10  # only flips JSON reads alike ("1e5" / "1E5"), if any


def test_every_bit_flip_of_an_l2_index_manifest_is_caught(tmp_path: Path) -> None:
    index = L2Index()
    index.add(["a", "b", "c"], np.eye(3, dtype=np.float32))
    index.save(tmp_path / "ix")

    def load() -> tuple:
        again = L2Index.load(tmp_path / "ix")
        return again.ids, again.dim, again.factory, again.search(np.ones(3, dtype=np.float32), 2)[0]

    assert _flip_every_bit(tmp_path / "ix" / "manifest.json", load) < 10


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.pop("dim"), "missing ['dim']"),
    (lambda m: m.__setitem__("count", "40"), "field 'count' has the wrong type"),
    (lambda m: m["scorer"].__setitem__("lode", m["scorer"].pop("mode")), "scorer state must hold exactly"),
    (lambda m: m["scorer"]["law"].__setitem__("dof", -1.0), "scorer law is out of range"),
    (lambda m: m["files"].__setitem__("../x", {"bytes": 1, "sha256": "0"}), "not a plain relative path"),
    (lambda m: m["files"]["records.json"].pop("bytes"), "must be {'bytes': int, 'sha256': str}"),
])
def test_manifest_fields_are_validated_even_without_a_checksum(tmp_path: Path, edit, match: str) -> None:
    """Manifests written before the checksum (no ``manifest_sha256``) still get their fields checked."""
    _store().save(tmp_path / "s")
    path = tmp_path / "s" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["manifest_sha256"]
    path.write_text(json.dumps(manifest))
    assert _state(DocStore.load(tmp_path / "s")[0])  # an old, intact save still loads
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(SaveFormatError, match="manifest.json") as info:
        DocStore.load(tmp_path / "s")
    assert match in str(info.value)


def test_an_old_manifest_with_unknown_fields_is_refused(tmp_path: Path) -> None:
    _store().save(tmp_path / "s")
    path = tmp_path / "s" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["manifest_sha25w"] = manifest.pop("manifest_sha256")  # the checksum's own name damaged
    path.write_text(json.dumps(manifest))
    with pytest.raises(SaveFormatError, match=r"no checksum .* unexpected \['manifest_sha25w'\]"):
        DocStore.load(tmp_path / "s")


def test_load_with_an_index_holding_other_ids_is_refused(tmp_path: Path) -> None:
    store = _store()
    store.save(tmp_path / "s")
    other = L2Index()
    other.add([f"Z{i}" for i in range(40)], np.zeros((40, 4), dtype=np.float32))
    with pytest.raises(SaveFormatError, match="missing from the index"):
        DocStore.load(tmp_path / "s", index=other)
    wider = L2Index()
    wider.add([f"d{i}" for i in range(40)], np.zeros((40, 5), dtype=np.float32))
    with pytest.raises(SaveFormatError, match="dimension 5, the save 4"):
        DocStore.load(tmp_path / "s", index=wider)
    smaller = L2Index.load(tmp_path / "s" / "index")
    smaller.remove(["d0"])
    with pytest.raises(SaveFormatError, match="39 vectors"):
        DocStore.load(tmp_path / "s", index=smaller)
    same = L2Index.load(tmp_path / "s" / "index")
    loaded, _ = DocStore.load(tmp_path / "s", index=same)
    assert _state(loaded) == _state(store)
