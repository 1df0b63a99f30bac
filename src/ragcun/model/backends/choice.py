"""Which backend runs an encoder: the names, the default, and the check that ONNX Runtime is installed.

Plain functions without torch or onnxruntime imports, so a command line can offer the names cheaply.
"""

from __future__ import annotations

import importlib
from typing import Any

BACKENDS = ("torch", "onnx", "onnx-int8")
"""The inference backends (``backend=`` of ``GaussianEncoder``, ``load_encoder``, ``EmbeddingCache``)."""
LOSSLESS_BACKENDS = ("torch", "onnx")
"""Backends whose outputs match PyTorch's (cosine >= 0.9999), so they share embedding-cache entries."""
EXTRA_HINT = 'pip install "ragcun[onnx]"'
"""The install line of the ONNX Runtime backend's extra."""


class BackendUnavailableError(ImportError):
    """The backend asked for needs a package that is not installed; the message names the extra."""


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` import."""
    try:
        require_onnxruntime("onnx")
    except BackendUnavailableError:
        return False
    return True


def require_onnxruntime(backend: str) -> Any:
    """The ``onnxruntime`` module, or :class:`BackendUnavailableError` naming ``backend`` and the extra."""
    try:
        importlib.import_module("onnx")
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend={backend!r} needs ONNX Runtime, which is not installed ({exc}); install it with {EXTRA_HINT}"
        ) from exc


def resolve_backend(backend: str | None, device: Any = None) -> str:
    """The backend to run: ``backend`` checked, or for ``None`` the default for ``device``.

    The default is ``"onnx"`` on a CPU when ONNX Runtime is installed, else ``"torch"``; an ONNX backend on
    another device, or an unknown name, is a ``ValueError``; an ONNX backend without ONNX Runtime is a
    :class:`BackendUnavailableError` naming the extra.
    """
    on_cpu = device is None or str(device).split(":")[0] == "cpu"
    if backend is None:
        return "onnx" if on_cpu and onnxruntime_available() else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend != "torch":
        if not on_cpu:
            raise ValueError(f"backend={backend!r} runs on the CPU; the model is on {device}: use backend='torch'")
        require_onnxruntime(backend)
    return backend
