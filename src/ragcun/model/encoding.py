"""Text checks and cached encoder loading shared by the retriever and the framework embeddings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragcun.index.protocol import as_list
from ragcun.model.encoder import GaussianEncoder, resolve_model_path

_CACHE: dict[tuple[str, str | None, str | None], GaussianEncoder] = {}
_CACHE_LOCK = threading.Lock()


def check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    """``texts`` as a list, or a ``ValueError`` naming the first None, non-string, blank or not
    UTF-8-encodable entry (a lone surrogate such as ``"\\ud800"``, which tokenizers cannot take)."""
    if texts is None:
        raise ValueError(f"{what} is None")
    texts = as_list(texts, what)
    for i, text in enumerate(texts):
        if text is None:
            raise ValueError(f"{what}[{i}] is None")
        if not isinstance(text, str):
            raise ValueError(f"{what}[{i}] must be a string; got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{what}[{i}] is empty")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{what}[{i}] is not valid Unicode text: {exc.reason} "
                             f"{text[exc.start:exc.end]!r} at position {exc.start}") from None
    return texts


def load_encoder(model_name: str | None = None, device: str | None = None, backend: str | None = None) -> GaussianEncoder:
    """A ``GaussianEncoder`` for ``model_name`` (None = bundled model), loaded once per process per device and
    inference ``backend`` (``GaussianEncoder(backend=...)``; ``None``: the default for the device).

    Cached by the resolved model (:func:`ragcun.model.encoder.resolve_model_path`), so every name of the
    bundled model (``None``, ``BUNDLED_MODEL_NAME``, ``"bundled"``, ...) shares one encoder."""
    key = (resolve_model_path(model_name), device, backend)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = GaussianEncoder(model_name, device=device, backend=backend)
        return _CACHE[key]


ROLES = ("query", "document")
"""The roles a text is encoded as (sentence-transformers' ``encode_query`` / ``encode_document``)."""


def encode_texts(encoder: Any, texts: Sequence[str], role: str = "document", *, instruction: str | None = None,
                 batch_size: int = 32, show_progress: bool = False, what: str = "texts") -> np.ndarray:
    """Encode checked ``texts`` as ``role`` to a finite float32 (N, D) array: the one encoding path of ragcun.

    ``role`` ``"query"`` / ``"document"`` goes through sentence-transformers' ``encode_query`` /
    ``encode_document``: the model's own ``query`` / ``document`` prompt is prepended (e5-, bge-style
    models) and a model with a ``Router`` routes by it. ``instruction``, when given, replaces that
    prompt (as LlamaIndex's HuggingFace embedding's ``query_instruction`` / ``text_instruction`` do).
    The embedding cache and ``ragcun-train`` key and encode by the same roles.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}; got {role!r}")
    texts = check_texts(texts, what)
    if not texts:
        return np.zeros((0, encoder.get_embedding_dimension()), dtype=np.float32)
    encode = encoder.encode_query if role == "query" else encoder.encode_document
    vecs = encode(texts, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True,
                  prompt=instruction or None)
    vecs = np.asarray(vecs, dtype=np.float32)
    if not np.isfinite(vecs).all():
        raise ValueError("the encoder produced NaN or infinite values")
    return vecs
