"""Deprecated import paths: the flat modules of ragcun 0.1 (``ragcun.lexical``, ``ragcun.doc_store``, ...) now
live in role subpackages. Importing an old path warns once and yields the new module itself."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED_MODULES = {
    "ragcun.calibration": "ragcun.scoring.calibrator",
    "ragcun.distributed": "ragcun.stats.distributed",
    "ragcun.doc_store": "ragcun.store.doc_store",
    "ragcun.embedding_cache": "ragcun.model.cache",
    "ragcun.encoder": "ragcun.model.encoder",
    "ragcun.filters": "ragcun.index.filters",
    "ragcun.fusion": "ragcun.store.fusion",
    "ragcun.head": "ragcun.model.head",
    "ragcun.isotropy": "ragcun.stats.isotropy",
    "ragcun.l2_index": "ragcun.index.faiss_l2",
    "ragcun.lexical": "ragcun.index.lexical",
    "ragcun.metadata": "ragcun.store.metadata",
    "ragcun.milvus_filters": "ragcun.index.milvus.filters",
    "ragcun.milvus_index": "ragcun.index.milvus.index",
    "ragcun.milvus_lite": "ragcun.index.milvus.lite",
    "ragcun.milvus_text": "ragcun.index.milvus.text",
    "ragcun.mmr": "ragcun.store.mmr",
    "ragcun.persistence": "ragcun.io.saves",
    "ragcun.rwlock": "ragcun.io.rwlock",
    "ragcun.scores": "ragcun.scoring.distance_law",
    "ragcun.sigreg": "ragcun.stats.sigreg",
    "ragcun.text_encoding": "ragcun.model.encoding",
    "ragcun.vector_index": "ragcun.index.protocol",
}
"""Old module path -> the module that holds its contents now."""


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves each old path of :data:`MOVED_MODULES` as its new module, with a ``DeprecationWarning``."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        """A spec for an old path; ``None`` (not ours) for anything else."""
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        """The new module, after warning that ``spec.name`` moved."""
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import from there (the old path will be removed)",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module is already loaded."""


def install() -> None:
    """Put :class:`MovedModuleFinder` on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
