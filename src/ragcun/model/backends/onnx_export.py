"""Export a sentence-transformers ``Transformer`` module to ONNX, once, cached on disk and verified on load.

Only the transformer is exported (token ids in, token embeddings out): pooling and any head run in
PyTorch on its output. The export uses ``torch.onnx.export(dynamo=False)`` with eager attention (the
form ONNX Runtime's BERT optimizer fuses), then, for BERT-like models, ONNX Runtime's transformer
optimizer; ``"onnx-int8"`` quantises that graph dynamically (``quantize_dynamic``): int8 weights with one
scale per output channel (a scale per tensor lets a few large channels flatten the rest) and activations
quantised per batch at run time.

Files live in the model's embedding-cache folder (``<cache root>/<fingerprint[:32]>/onnx/``, keyed by
:func:`ragcun.model.cache.keys.base_fingerprint`), so a changed model gets a new export and deleting the
cache deletes them. Each ``<backend>.onnx`` is written atomically with a ``<backend>.json`` holding its
SHA-256; a file that fails it, or that ONNX Runtime cannot load, is set aside as ``*.corrupt`` with a
warning and exported again, never loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragcun.io.atomic import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

EXPORT_VERSION = 2
"""Bump when the exported graph changes: older exports are then rebuilt."""
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
"""The token inputs an exported transformer may take (those its tokenizer produces)."""
OUTPUT_NAME = "token_embeddings"
"""The exported graph's output: what a sentence-transformers ``Transformer`` module writes for pooling."""
_OPTIMIZER_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "mpnet": "bert"}
PROBE_TEXTS = ["An exported transformer is checked on a few texts.", "ragcun", "Gaussian embeddings ranked by L2 distance. " * 8]
"""Texts an export is traced and checked on."""


class BackendExportError(RuntimeError):
    """A model that a backend cannot export (or not faithfully); the message names the model and the backend."""


class _TokenModel(torch.nn.Module):
    """The Hugging Face model as a function of its token tensors alone, returning the last hidden state."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors)), return_dict=True).last_hidden_state


def token_inputs(transformer: Any) -> tuple[str, ...]:
    """The token inputs ``transformer``'s tokenizer produces, among :data:`INPUT_NAMES`."""
    features = transformer.preprocess(["a"])
    return tuple(n for n in INPUT_NAMES if n in features)


def check_exportable(transformer: Any, model_name: str, backend: str) -> None:
    """Raise :class:`BackendExportError` unless ``transformer`` is a text ``Transformer`` whose model returns
    its last hidden state (what an export replaces)."""
    from sentence_transformers.base.modules import Transformer

    config = getattr(transformer, "modality_config", {}) or {}
    text = config.get("text", {}) if isinstance(config, dict) else {}
    if not isinstance(transformer, Transformer) or text.get("method") != "forward" \
            or text.get("method_output_name") != "last_hidden_state" or set(config) != {"text"}:
        raise BackendExportError(
            f"backend={backend!r} cannot run model {model_name!r}: it exports a text-only Transformer module "
            f"returning token embeddings first in the model; found {type(transformer).__name__}; use backend='torch'")


def export_onnx(transformer: Any, path: Path, backend: str, model_name: str) -> None:
    """Export ``transformer``'s model to ``path`` (atomically) as ``backend`` (``"onnx"`` or ``"onnx-int8"``)."""
    check_exportable(transformer, model_name, backend)
    names = token_inputs(transformer)
    model = copy.deepcopy(transformer.model).to("cpu", torch.float32).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    features = transformer.preprocess(PROBE_TEXTS[:2])
    args = tuple(features[n].cpu() for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in (*names, OUTPUT_NAME)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(_TokenModel(model, names), args, str(raw), input_names=list(names),
                                  output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=17, dynamo=False)
        except Exception as exc:
            raise BackendExportError(f"backend={backend!r} cannot export model {model_name!r}: "
                                     f"{type(exc).__name__}: {exc}; use backend='torch'") from exc
        final = _optimise(raw, Path(tmp), model.config)
        if backend == "onnx-int8":
            final = _quantise(final, Path(tmp))
        with atomic_path(path) as out:
            os.replace(final, out)
    write_json_atomic(_sidecar(path), {"export_version": EXPORT_VERSION, "sha256": _sha256(path),
                                       "inputs": list(names), "model": model_name, "backend": backend})


def _optimise(raw: Path, tmp: Path, config: Any) -> Path:
    """ONNX Runtime's transformer optimizer (fused attention, LayerNorm, GELU) for a BERT-like model."""
    model_type = _OPTIMIZER_TYPES.get(getattr(config, "model_type", ""))
    if model_type is None:
        return raw
    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    optimised = optimize_model(str(raw), model_type=model_type, num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size))
    out = tmp / "optimised.onnx"
    optimised.save_model_to_file(str(out))
    return out


def _quantise(graph: Path, tmp: Path) -> Path:
    """``graph`` with int8 weights, one scale per output channel, and activations quantised at run time."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp / "int8.onnx"
    # DefaultTensorType: the fused graph's contrib ops (Attention, SkipLayerNormalization) carry no type information
    quantize_dynamic(str(graph), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    return out


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_inputs(path: Path) -> tuple[str, ...] | None:
    """The inputs of the export at ``path`` if it and its checksum file are intact and current; ``None`` if
    there is none; :class:`ValueError` describing the damage otherwise."""
    if not path.exists():
        return None
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"its checksum file {_sidecar(path).name} is missing or unreadable ({exc})") from None
    if meta.get("export_version") != EXPORT_VERSION:
        return None
    if meta.get("sha256") != _sha256(path):
        raise ValueError("it fails its SHA-256 checksum")
    return tuple(meta["inputs"])


def set_aside(path: Path, reason: str) -> None:
    """Rename a damaged export (and its checksum file) to ``*.corrupt``, with a warning naming it."""
    message = f"ONNX export {path} is damaged ({reason}); setting it aside as {path.name}.corrupt and exporting again"
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    for p in (path, _sidecar(path)):
        if p.exists():
            os.replace(p, p.with_name(p.name + ".corrupt"))
