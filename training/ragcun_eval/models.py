"""``--model`` values: ``NAME[:geometry]`` parsing, Gaussian-model detection, loading and fingerprints.

A value is a model name or path with an optional ``:cosine``, ``:l2`` or ``:whitened`` suffix. Only a
suffix that names a geometry is split off, so a path containing ``:`` stays whole. Without a suffix a
Gaussian model (a saved ragcun model: its ``config_sentence_transformers.json`` has a ``"ragcun"``
entry) is scored by L2 and any other model by cosine. ``bundled`` names the bundled all-MiniLM-L6-v2.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize

from ragcun.encoder import resolve_model_path

GEOMETRIES = ("cosine", "l2", "whitened")
FINGERPRINT_VERSION = "1"  # bump when what a cached base output means changes


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value: ``name`` as given, its resolved ``path`` and the ``geometry``."""

    name: str
    path: str
    geometry: str
    gaussian: bool

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
    path = resolve_model_path(name)
    local = Path(path).exists()
    if not local and name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model folder {name!r} does not exist")
    gaussian = local and is_gaussian_model(path)
    return ModelSpec(name, path, geometry or ("l2" if gaussian else "cosine"), gaussian)


@dataclass
class LoadedModel:
    """A model split for caching: ``base`` gives the raw pooled outputs (no ``Normalize``), ``head`` maps
    them to the model's outputs (``None`` for a plain model), ``fingerprint`` identifies ``base``."""

    base: SentenceTransformer
    head: Callable[[np.ndarray], np.ndarray] | None
    fingerprint: str


def module_fingerprint(modules: Sequence[torch.nn.Module], prompts: dict[str, str]) -> str:
    """SHA-256 of the modules' types, configs and weights, and of the prompts."""
    digest = hashlib.sha256(f"ragcun-eval-base-v{FINGERPRINT_VERSION}".encode())
    for i, module in enumerate(modules):
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        digest.update(f"{i}:{type(module).__name__}:{json.dumps(config, sort_keys=True, default=str)}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest.update(json.dumps(prompts, sort_keys=True).encode())
    return digest.hexdigest()


def load_model(spec: ModelSpec, device: str | None = None) -> LoadedModel:
    """Load ``spec``'s model as base + head.

    A plain model's base is the model without its trailing ``Normalize``. A Gaussian model's base is
    everything before its head, so a model trained on a frozen base shares the cached base outputs
    of that base model; its head (input ``Normalize`` included) is applied after the cache.
    """
    if not spec.gaussian:
        model = SentenceTransformer(spec.path, device=device)
        while len(model) and isinstance(model[len(model) - 1], Normalize):
            del model[len(model) - 1]
        return LoadedModel(model, None, module_fingerprint(list(model), dict(model.prompts)))
    from ragcun import GaussianEncoder

    gauss = GaussianEncoder(spec.path, device=device)
    gauss.eval()
    base = SentenceTransformer(modules=[gauss[i] for i in range(gauss.head_start)], device=str(gauss.device))
    base.prompts, base.default_prompt_name = dict(gauss.prompts), gauss.default_prompt_name

    def head(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = gauss.apply_head(torch.as_tensor(raw, device=gauss.device))
        return out.cpu().numpy().astype(np.float32)

    return LoadedModel(base, head, module_fingerprint(list(base), dict(base.prompts)))
