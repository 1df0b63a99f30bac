"""``--model`` values: ``NAME[:geometry]`` parsing, Gaussian-model detection, loading (:class:`Embedder`).

A value is a model name or path with an optional ``:cosine``, ``:l2``, ``:whitened``, ``:hybrid`` or
``:lexical`` suffix. Only a suffix that names a geometry is split off, so a path containing ``:``
stays whole. Without a suffix a Gaussian model (a saved ragcun model: its
``config_sentence_transformers.json`` has a ``"ragcun"`` entry) is scored by L2 and any other model
by cosine. ``hybrid`` fuses that default geometry's ranking with BM25 (``ragcun.store.fusion``, through
``ragcun.DocStore``); ``lexical`` is BM25 alone. ``bundled`` names the bundled all-MiniLM-L6-v2 (a plain
model: cosine), ``gaussian`` the bundled *Gaussian* model, what ``ragcun.GaussianEncoder()`` loads (its
head on the bundled base: L2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from ragcun.model.cache import EmbeddingCache, default_cache_dir
from ragcun.model.encoder import resolve_model_path

BUNDLED_GAUSSIAN = "gaussian"
"""The ``--model`` name of the bundled Gaussian model (``GaussianEncoder()``)."""
DENSE_GEOMETRIES = ("cosine", "l2", "whitened")
GEOMETRIES = (*DENSE_GEOMETRIES, "hybrid", "lexical")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value: ``name`` as given, its resolved ``path`` and the ``geometry``."""

    name: str
    path: str
    geometry: str
    gaussian: bool

    @property
    def dense_geometry(self) -> str:
        """The geometry of the dense vectors: ``geometry`` itself, or the model's default for ``hybrid`` / ``lexical``."""
        if self.geometry in DENSE_GEOMETRIES:
            return self.geometry
        return "l2" if self.gaussian else "cosine"

    @property
    def label(self) -> str:
        """``name:geometry``, the row label in results."""
        return f"{self.name}:{self.geometry}"


def display_labels(specs: Sequence[ModelSpec]) -> list[str]:
    """Labels for plots and tables: ``folder-name:geometry`` for paths, unless two would coincide."""
    short = [f"{Path(s.name).name or s.name}:{s.geometry}" for s in specs]
    return short if len(set(short)) == len(short) else [s.label for s in specs]


def is_gaussian_model(path: str | Path) -> bool:
    """Whether ``path`` is a saved ragcun Gaussian model (a ``"ragcun"`` entry in its ST config)."""
    config = Path(path) / "config_sentence_transformers.json"
    if not config.is_file():
        return False
    return json.loads(config.read_text(encoding="utf-8")).get("ragcun") is not None


def parse_model_spec(value: str) -> ModelSpec:
    """Parse ``NAME[:geometry]``; see the module docstring for the defaults."""
    if not value or not value.strip():
        raise ValueError("empty --model value")
    name, geometry = value, None
    head, sep, tail = value.rpartition(":")
    if sep and tail in GEOMETRIES:
        name, geometry = head, tail
    elif sep and tail and not Path(value).exists() and "/" not in tail:
        raise ValueError(f"unknown geometry {tail!r} in --model {value!r}; choose one of {GEOMETRIES}")
    if name == BUNDLED_GAUSSIAN:
        return ModelSpec(name, resolve_model_path(None), geometry or "l2", True)
    path = resolve_model_path(name)
    gaussian = Path(path).exists() and is_gaussian_model(path)
    return ModelSpec(name, path, geometry or ("l2" if gaussian else "cosine"), gaussian)


@dataclass
class LoadedModel:
    """A loaded model split for caching: ``cache`` gives its base outputs (pooled, before any ``Normalize``;
    see :mod:`ragcun.model.cache`), ``head`` maps them to the model's outputs (``None`` for a plain model)."""

    model: SentenceTransformer
    head: Callable[[np.ndarray], np.ndarray] | None
    cache: EmbeddingCache

    def embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        """Raw (N, D) float32 outputs (head included, no geometry) of ``texts`` as ``role``; base outputs cached."""
        raw = self.cache.get(texts, role)
        return self.head(raw) if self.head is not None else raw


def load_model(spec: ModelSpec, cache_dir: str | Path | None = None, device: str | None = None,
               batch_size: int = 64) -> LoadedModel:
    """Load ``spec``'s model with its base outputs cached under ``cache_dir`` (default: the ragcun cache).

    A plain model's base is the model without its trailing ``Normalize``. A Gaussian model's base is
    everything before its head, so a model trained on a frozen base shares the cached base outputs
    of that base model; its head (input ``Normalize`` included) is applied after the cache.
    """
    if not spec.gaussian:
        model = SentenceTransformer(spec.path, device=device)
        return LoadedModel(model, None, EmbeddingCache(model, cache_dir, batch_size=batch_size))
    from ragcun import GaussianEncoder

    gauss = GaussianEncoder(spec.path, device=device)
    gauss.eval()

    def head(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = gauss.apply_head(torch.as_tensor(raw, device=gauss.device))
        return out.cpu().numpy().astype(np.float32)

    return LoadedModel(gauss, head, EmbeddingCache(gauss, cache_dir, batch_size=batch_size))


class Embedder:
    """Model outputs per (``--model``, texts, role) for the eval commands: each model loaded once, base
    outputs from the shared on-disk cache (:class:`ragcun.model.cache.EmbeddingCache`), heads applied after.

    Args:
        cache_dir: the cache root (default ``$RAGCUN_CACHE_DIR`` or ``~/.cache/ragcun/embeddings``).
        device: torch device for the models.
        batch_size: encoding batch size.
    """

    def __init__(self, cache_dir: str | Path | None = None, *, device: str | None = None, batch_size: int = 64) -> None:
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.device, self.batch_size = device, batch_size
        self._models: dict[str, LoadedModel] = {}

    def model(self, spec: ModelSpec) -> LoadedModel:
        """``spec``'s model, loaded once."""
        key = f"{spec.path}:{'gaussian' if spec.gaussian else 'plain'}"  # the bundled base is both
        if key not in self._models:
            self._models[key] = load_model(spec, self.root, self.device, self.batch_size)
        return self._models[key]

    def embed(self, spec: ModelSpec, texts: Sequence[str], role: str) -> np.ndarray:
        """Raw (N, D) float32 outputs of ``spec``'s model (head included, no geometry) for ``texts`` as ``role``."""
        return self.model(spec).embed(texts, role)
