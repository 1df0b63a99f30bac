"""Run an exported transformer with ONNX Runtime on the CPU, on every core.

:class:`OnnxTransformer` finds (or builds) the export of a model's ``Transformer`` module for a backend
and runs it on the token tensors sentence-transformers' tokenizer produces, returning the token
embeddings the next module (pooling) takes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragcun.model.backends.choice import require_onnxruntime
from ragcun.model.backends.onnx_export import (
    OUTPUT_NAME,
    PROBE_TEXTS,
    BackendExportError,
    export_onnx,
    set_aside,
    verified_inputs,
)

MIN_COSINE = 0.9999
"""The least cosine (mean-pooled) a lossless export must reach against PyTorch on the probe texts."""


def cpu_threads() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def session_options(ort: Any) -> Any:
    """ONNX Runtime session options: every graph optimisation, one intra-op thread per core."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


@contextlib.contextmanager
def export_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s ``.lock`` sibling (between processes, where ``fcntl`` exists), so
    one process exports while the others wait and then load its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: exports are still atomic; concurrent first uses may export twice
        yield
        return
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class OnnxTransformer:
    """A model's ``Transformer`` module run by ONNX Runtime, from its export at ``path`` (built if missing).

    A damaged export is set aside with a warning and rebuilt (:mod:`~ragcun.model.backends.onnx_export`).
    A new lossless (``"onnx"``) export is checked against PyTorch on a few texts: mean-pooled cosine
    below :data:`MIN_COSINE` deletes it and raises :class:`BackendExportError`.
    """

    def __init__(self, transformer: Any, path: Path, backend: str, model_name: str) -> None:
        ort = require_onnxruntime(backend)
        self.path, self.backend = path, backend
        with export_lock(path):
            exported = self._load(ort, transformer, model_name)
        if exported and backend == "onnx":
            self._check_against(transformer, model_name)

    def _load(self, ort: Any, transformer: Any, model_name: str) -> bool:
        """Open the export (building it first if missing or damaged); whether it was built now."""
        path, exported = self.path, False
        for attempt in range(2):
            try:
                inputs = verified_inputs(path)
            except ValueError as exc:
                set_aside(path, str(exc))
                inputs = None
            if inputs is None:
                exported = True
                export_onnx(transformer, path, self.backend, model_name)
                inputs = verified_inputs(path)
            try:
                self.session = ort.InferenceSession(str(path), session_options(ort), providers=["CPUExecutionProvider"])
                break
            except Exception as exc:  # ONNX Runtime raises its own types for a file it cannot load
                if attempt:
                    raise
                set_aside(path, f"ONNX Runtime cannot load it: {exc}")
        self.inputs: tuple[str, ...] = tuple(inputs or ())
        return exported

    def _check_against(self, transformer: Any, model_name: str) -> None:
        features = transformer.preprocess(PROBE_TEXTS)
        with torch.no_grad():
            expected = transformer(dict(features))[transformer.module_output_name].float()
        found = self(features)
        mask = features["attention_mask"].unsqueeze(-1).float()
        a, b = (expected * mask).sum(1), (found * mask).sum(1)
        cosine = float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())
        if cosine < MIN_COSINE:
            for p in (self.path, self.path.with_suffix(".json")):
                p.unlink(missing_ok=True)
            raise BackendExportError(f"backend={self.backend!r} cannot export model {model_name!r} faithfully: "
                                     f"cosine {cosine:.6f} to PyTorch (< {MIN_COSINE}); use backend='torch'")

    def __call__(self, features: dict[str, Any]) -> torch.Tensor:
        """Token embeddings (batch, sequence, hidden) float32 of tokenised ``features``."""
        feed = {name: np.ascontiguousarray(features[name].detach().cpu().numpy(), dtype=np.int64) for name in self.inputs}
        (out,) = self.session.run([OUTPUT_NAME], feed)
        return torch.from_numpy(out)
