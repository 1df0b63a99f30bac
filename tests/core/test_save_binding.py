"""Every file of a ``DocStore`` save is bound to that save: a file taken from another save is a clear
``SaveFormatError`` naming it, even where the two saves' files have the same shape."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ragcun.index.lexical.bm25 import BM25Index
from ragcun.io.saves import MANIFEST, SaveFormatError, manifest_checksum
from ragcun.store.doc_store import DocStore, Record

# Two corpora of the same shape (three documents of two distinct words each): their BM25 postings
# arrays (term, document, tf) are equal; only the vocabularies in lexical.json differ.
POSTINGS = "postings.safetensors"
FIRST = ["alpha beta", "gamma delta", "epsilon zeta"]
SECOND = ["one two", "three four", "five six"]


def _save(path: Path, texts: list[str], seed: int) -> Path:
    store = DocStore()
    vecs = np.random.default_rng(seed).standard_normal((len(texts), 4)).astype(np.float32)
    store.add([Record(f"d{i}", t, {"i": i}) for i, t in enumerate(texts)], vecs)
    return store.save(path)


def _resign(save: Path, name: str) -> None:
    """Record file ``name``'s current size and SHA-256 in the manifests above it and re-checksum them (a tool
    that re-signs a save after swapping a file)."""
    parts = name.split("/")
    nested = len(parts) > 1 and (save / parts[0] / MANIFEST).is_file()  # index/ is a save of its own
    for depth in (1, 0) if nested else (0,):  # the inner manifest first: the outer one lists it
        folder, inner = save.joinpath(*parts[:depth]), "/".join(parts[depth:])
        manifest = json.loads((folder / MANIFEST).read_text())
        for entry in (inner, *((f"{parts[0]}/{MANIFEST}",) if nested and depth == 0 else ())):
            data = (folder / entry).read_bytes()
            manifest["files"][entry] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        manifest["manifest_sha256"] = manifest_checksum(manifest)
        (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture()
def saves(tmp_path: Path) -> tuple[Path, Path]:
    return _save(tmp_path / "a", FIRST, 0), _save(tmp_path / "b", SECOND, 1)


def test_same_shape_postings_from_another_save_are_refused(saves: tuple[Path, Path]) -> None:
    a, b = saves
    arrays_a, arrays_b = (load_file(str(s / "lexical" / POSTINGS)) for s in saves)
    assert all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)  # the arrays alone cannot tell them apart
    shutil.copy(b / "lexical" / POSTINGS, a / "lexical" / POSTINGS)
    with pytest.raises(SaveFormatError, match=r"lexical/postings\.safetensors: checksum mismatch.*another save"):
        DocStore.load(a)


@pytest.mark.parametrize("name, match", [
    (f"lexical/{POSTINGS}", r"postings\.safetensors: written with another lexical\.json"),
    ("index/ids.json", r"ids\.json: written with another index\.faiss"),
])
def test_a_file_from_another_save_is_refused_even_with_resigned_manifests(saves: tuple[Path, Path], name: str,
                                                                          match: str) -> None:
    a, b = saves
    shutil.copy(b / name, a / name)
    _resign(a, name)
    with pytest.raises(SaveFormatError, match=match):
        DocStore.load(a)


@pytest.mark.parametrize("name", ["records.json", "lexical/lexical.json", "index/index.faiss", "index/ids.json",
                                  "index/manifest.json"])
def test_any_other_file_from_another_save_is_refused(saves: tuple[Path, Path], name: str) -> None:
    a, b = saves
    shutil.copy(b / name, a / name)
    with pytest.raises(SaveFormatError, match=rf"{name.replace('.', '[.]')}: (checksum mismatch|truncated)"):
        DocStore.load(a)


def test_postings_saved_before_the_binding_still_load(tmp_path: Path) -> None:
    index = BM25Index()
    index.add(["d0", "d1"], FIRST[:2])
    index.save(tmp_path)
    postings = tmp_path / POSTINGS
    save_file(load_file(str(postings)), str(postings))  # no header metadata, as ragcun wrote it before
    loaded = BM25Index.load(tmp_path)
    assert loaded.search("gamma", 2)[0] == index.search("gamma", 2)[0] == ["d1"]
