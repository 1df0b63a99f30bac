"""Inference backends of the encoder: the same model run by PyTorch or by ONNX Runtime.

``backend="torch"`` runs every module in PyTorch. ``backend="onnx"`` exports the model's transformer
once (:mod:`~ragcun.model.backends.onnx_export`, cached beside the embedding cache) and runs it with
ONNX Runtime on the CPU (:mod:`~ragcun.model.backends.onnx_runtime`); pooling and the Gaussian head run
in PyTorch on its output, unchanged. ``"onnx-int8"`` is the same graph quantised: int8 weights
(a scale per output channel) and activations quantised at run time: faster, not lossless. ``None`` picks ``"onnx"`` on a CPU when ONNX Runtime imports and
``"torch"`` otherwise (:func:`resolve_backend`). Training and any forward pass with gradients always
run in PyTorch.
"""

from __future__ import annotations

from ragcun.model.backends.choice import (
    BACKENDS,
    EXTRA_HINT,
    LOSSLESS_BACKENDS,
    BackendUnavailableError,
    onnxruntime_available,
    require_onnxruntime,
    resolve_backend,
)

__all__ = [
    "BACKENDS",
    "EXTRA_HINT",
    "LOSSLESS_BACKENDS",
    "BackendUnavailableError",
    "onnxruntime_available",
    "require_onnxruntime",
    "resolve_backend",
]
