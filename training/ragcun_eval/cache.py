"""On-disk cache of raw base outputs (``.npy`` + ``.json``, no pickle).

Key: the fingerprint of the model's base (weights, configs and prompts, see
:func:`ragcun_eval.models.module_fingerprint`), the role (``query`` / ``document``: prompts may
differ) and a hash of the texts. What is cached is the pooled output *before* any normalisation,
Gaussian head or geometry, so every geometry of a model, and every Gaussian model trained on a
frozen copy of that base, share one encode; heads and geometries are applied after reading.
Layout: ``<root>/<fingerprint[:16]>/<role>-<texts hash[:16]>.{npy,json}``.
Default root: ``$RAGCUN_EVAL_CACHE`` or ``~/.cache/ragcun-eval``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from sentence_transformers import SentenceTransformer

from ragcun_eval.models import LoadedModel, ModelSpec, load_model

ROLES = ("query", "document")
PROGRESS_MIN = 256  # show a progress bar for encodes of at least this many texts


def default_cache_dir() -> Path:
    """``$RAGCUN_EVAL_CACHE`` or ``~/.cache/ragcun-eval``."""
    return Path(os.environ.get("RAGCUN_EVAL_CACHE") or Path.home() / ".cache" / "ragcun-eval")


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the texts in order (length-prefixed, so no two lists collide by concatenation)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def encode_raw(model: SentenceTransformer, texts: list[str], role: str, batch_size: int) -> np.ndarray:
    """Raw float32 outputs of ``model`` for ``texts`` with the prompt of ``role``; a tqdm bar for long lists."""
    encode = model.encode_query if role == "query" else model.encode_document
    out = encode(texts, batch_size=batch_size, show_progress_bar=len(texts) >= PROGRESS_MIN, convert_to_numpy=True)
    out = np.asarray(out, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError("the model produced NaN or infinite values")
    return out


class EmbeddingCache:
    """Model outputs per (model, role, texts): base outputs read from disk when present, else encoded
    and stored; then the model's head, if any. Each model is loaded once per cache object."""

    def __init__(self, root: str | Path | None = None, *, device: str | None = None, batch_size: int = 64) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.device, self.batch_size = device, batch_size
        self._models: dict[str, LoadedModel] = {}

    def model(self, spec: ModelSpec) -> LoadedModel:
        """``spec``'s model, loaded once."""
        if spec.path not in self._models:
            self._models[spec.path] = load_model(spec, self.device)
        return self._models[spec.path]

    def embed(self, spec: ModelSpec, texts: Sequence[str], role: str) -> np.ndarray:
        """Raw (N, D) float32 outputs of ``spec``'s model (head included, no geometry) for ``texts`` as ``role``."""
        model = self.model(spec)
        raw = self.base_outputs(model, texts, role)
        return model.head(raw) if model.head is not None else raw

    def base_outputs(self, model: LoadedModel, texts: Sequence[str], role: str) -> np.ndarray:
        """Pooled base outputs (N, D) of ``texts`` as ``role``, from disk or encoded and stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}; got {role!r}")
        texts = list(texts)
        key = texts_hash(texts)
        folder = self.root / model.fingerprint[:16]
        npy, meta = folder / f"{role}-{key[:16]}.npy", folder / f"{role}-{key[:16]}.json"
        if npy.is_file() and meta.is_file():
            info = json.loads(meta.read_text(encoding="utf-8"))
            arr = np.load(npy, allow_pickle=False)
            if info.get("texts_sha256") == key and arr.shape[0] == len(texts):
                return arr
        arr = encode_raw(model.base, texts, role, self.batch_size)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, npy)
        meta.write_text(json.dumps({"fingerprint": model.fingerprint,
                                    "role": role, "texts_sha256": key, "n": arr.shape[0], "dim": arr.shape[1]}, indent=1))
        return arr
