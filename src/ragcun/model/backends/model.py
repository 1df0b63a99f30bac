"""``BackendSentenceTransformer``: a ``SentenceTransformer`` whose inference can run its transformer in ONNX Runtime.

With ``backend="onnx"`` (or ``"onnx-int8"``, or the default ``None`` on a CPU with ONNX Runtime
installed) a forward pass without gradients runs the first module, the ``Transformer``, with ONNX
Runtime and every later module (pooling, a Gaussian head) in PyTorch, unchanged. ``encode`` and the
rest of sentence-transformers' API are untouched: they call ``forward``. Training, or any forward pass
with gradients, runs in PyTorch.

Exports are found through a per-process table keyed by the ``Transformer`` module itself and its
weights (:func:`weights_key`), so views sharing the module (a base model, the embedding cache's encoder)
share one ONNX Runtime session, and changed weights (training, ``load_state_dict``) get a new export.
"""

from __future__ import annotations

import logging
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from torch.optim.optimizer import register_optimizer_step_post_hook

from ragcun.model.backends.choice import resolve_backend
from ragcun.model.backends.onnx_export import BackendExportError, check_exportable
from ragcun.model.backends.onnx_runtime import OnnxTransformer

log = logging.getLogger(__name__)

_RUNNERS: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, OnnxTransformer]] = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()


def export_dir(model: SentenceTransformer, root: str | Path | None = None) -> Path:
    """Where ``model``'s exports live: ``<root>/<base fingerprint[:32]>/onnx`` (root: the embedding cache's)."""
    from ragcun.model.cache.embedding_cache import default_cache_dir
    from ragcun.model.cache.keys import base_fingerprint

    base = Path(root).expanduser() if root is not None else default_cache_dir()
    return base / base_fingerprint(model)[:32] / "onnx"


_optimiser_steps = 0
"""Optimiser steps taken in this process (any optimiser, counted by a global step hook)."""
_WEIGHT_KEYS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, tuple, tuple]] = weakref.WeakKeyDictionary()


def _count_optimiser_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    global _optimiser_steps
    _optimiser_steps += 1


register_optimizer_step_post_hook(_count_optimiser_step)


def weights_key(module: torch.nn.Module) -> tuple:
    """What tells ``module``'s weights apart between forward passes: each tensor's storage and version counter
    (which in-place torch operations and ``load_state_dict`` bump), and each tensor's sum, read again only
    after an optimiser step in this process (fused optimisers write without bumping version counters).
    Summing every weight takes longer than encoding a query, so a query encode must not pay it each time.
    A write through ``.data`` outside an optimiser is not seen."""
    storage = tuple((p.data_ptr(), p._version, p.dtype) for p in module.parameters())
    seen = _WEIGHT_KEYS.get(module)
    if seen is not None and seen[0] == _optimiser_steps and seen[1] == storage:
        return seen[2]
    steps = _optimiser_steps
    key = (storage, weight_sums(module))
    _WEIGHT_KEYS[module] = (steps, storage, key)
    return key


def weight_sums(module: torch.nn.Module) -> tuple[float, ...]:
    """Each of ``module``'s weight tensors summed (float64)."""
    with torch.no_grad():
        return tuple(float(p.sum(dtype=torch.float64)) for p in module.parameters())


class BackendSentenceTransformer(SentenceTransformer):
    """A ``SentenceTransformer`` with ``backend=`` ``"torch"``, ``"onnx"``, ``"onnx-int8"`` or ``None``
    (see :mod:`ragcun.model.backends`); ``export_root`` is the cache root its exports live under
    (default: the embedding cache's, :func:`ragcun.model.cache.default_cache_dir`).

    sentence-transformers' own ``backend`` (how modules are loaded) stays ``"torch"``.
    """

    def __init__(self, *args: Any, backend: str | None = None, export_root: str | Path | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_backend(backend, export_root)

    def set_backend(self, backend: str | None, export_root: str | Path | None = None) -> None:
        """Choose the inference backend (checked now: an unknown name, or ONNX without ONNX Runtime, raises)."""
        resolve_backend(backend, self.device)
        self.__dict__["_backend_asked"] = backend
        self.__dict__["_export_root"] = export_root
        self.__dict__["_backend_failed"] = False

    @property
    def backend_asked(self) -> str | None:
        """The ``backend=`` given (``None``: the default for the device)."""
        return self.__dict__.get("_backend_asked")

    @property
    def inference_backend(self) -> str:
        """The backend that runs this model's inference now, on its current device."""
        if self.__dict__.get("_backend_failed"):
            return "torch"
        return resolve_backend(self.backend_asked, self.device)

    def forward(self, input: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        """sentence-transformers' forward pass, with the transformer run by the inference backend when no gradients flow."""
        if self.training or torch.is_grad_enabled() or len(self) == 0:
            return super().forward(input, **kwargs)
        runner = self._runner()
        if runner is None:
            return super().forward(input, **kwargs)
        features = dict(input)
        features[str(getattr(self[0], "module_output_name", "token_embeddings"))] = runner(features)
        for name, module in list(self.named_children())[1:]:
            keys = set((self.module_kwargs or {}).get(name, [])) | set(getattr(module, "forward_kwargs", ()))
            features = module(features, **{k: v for k, v in kwargs.items() if k in keys})
        return features

    def _runner(self) -> OnnxTransformer | None:
        backend = self.inference_backend
        if backend == "torch":
            return None
        transformer = self[0]
        with _RUNNERS_LOCK:
            key = (backend, str(self.__dict__.get("_export_root")), weights_key(transformer))
            runners = _RUNNERS.setdefault(transformer, {})
            if key not in runners:
                try:
                    runners.clear()
                    runners[key] = self._build_runner(transformer, backend)
                except BackendExportError as exc:
                    if self.backend_asked is not None:
                        raise
                    message = f"{exc}; encoding with PyTorch instead"
                    log.warning(message)
                    warnings.warn(message, RuntimeWarning, stacklevel=4)
                    self.__dict__["_backend_failed"] = True
                    return None
            return runners[key]

    def _build_runner(self, transformer: Any, backend: str) -> OnnxTransformer:
        name = str(getattr(getattr(getattr(transformer, "model", None), "config", None), "name_or_path", "")
                   or type(transformer).__name__)
        check_exportable(transformer, name, backend)
        path = export_dir(self, self.__dict__.get("_export_root")) / f"{backend}.onnx"
        return OnnxTransformer(transformer, path, backend, name)
