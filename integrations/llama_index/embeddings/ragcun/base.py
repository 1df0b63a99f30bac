"""``GaussianEmbedding``: a LlamaIndex ``BaseEmbedding`` over ``ragcun.GaussianEncoder``."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from ragcun.model.encoder import BUNDLED_MODEL_NAME
from ragcun.model.encoding import encode_texts, load_encoder


class GaussianEmbedding(BaseEmbedding):
    """Unnormalised isotropic Gaussian embeddings (compare by Euclidean distance); usable as ``Settings.embed_model``.

    ``model_name`` is a model name or path (default: the bundled all-MiniLM-L6-v2 Gaussian model);
    Queries and documents are encoded with the model's own ``query`` / ``document`` prompts (if it has
    them); ``query_instruction`` / ``text_instruction`` replace those prompts.
    A loaded ``encoder`` may be passed instead of loading one.
    """

    model_name: str = Field(default=BUNDLED_MODEL_NAME, description="Model name or path.")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="Batch size for encoding.")
    device: str | None = Field(default=None, description="torch device; None picks automatically.")
    backend: str | None = Field(default=None, description="inference backend: 'torch', 'onnx', 'onnx-int8'; "
                                                          "None: ONNX on a CPU when installed, else torch.")
    query_instruction: str | None = Field(default=None, description="Prefix for queries.")
    text_instruction: str | None = Field(default=None, description="Prefix for documents.")
    show_progress: bool = Field(default=False, description="Show a progress bar while encoding.")
    _encoder: Any = PrivateAttr()

    def __init__(self, model_name: str | None = None, *, encoder: Any = None, **kwargs: Any) -> None:
        super().__init__(model_name=model_name or BUNDLED_MODEL_NAME, **kwargs)
        self._encoder = encoder if encoder is not None else load_encoder(self.model_name, self.device, self.backend)

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex serialisation name."""
        return "GaussianEmbedding"

    @property
    def relevance_calibrator(self) -> Any:
        """The model's ``ragcun.scoring.calibrator.RelevanceCalibrator`` (``None`` if it has none): pass this
        embedding (or it) as ``GaussianVectorStore(calibrator=...)`` for ``P(relevant)`` scores."""
        return getattr(self._encoder, "relevance_calibrator", None)

    @property
    def fusion_settings(self) -> Any:
        """The model's fitted hybrid weight (``ragcun.scoring.fusion_settings.FusionSettings``, ``None`` if it has
        none); a store built with this model uses it unless given ``alpha=``."""
        return getattr(self._encoder, "fusion_settings", None)

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return int(self._encoder.get_embedding_dimension())

    def _encode(self, texts: list[str], role: str, what: str) -> list[Embedding]:
        instruction = self.query_instruction if role == "query" else self.text_instruction
        return encode_texts(self._encoder, texts, role, instruction=instruction, batch_size=self.embed_batch_size,
                            show_progress=self.show_progress, what=what).tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([query], "query", "query")[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([text], "document", "text")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(texts, "document", "texts")

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
